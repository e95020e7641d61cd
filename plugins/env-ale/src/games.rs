//! The games: every ROM the pinned `ale-py==0.12.1` wheel ships, and the study's game sets.

/// The family's name; its tasks are the games below, in this order.
pub const FAMILY: &str = "atari";

/// Every ROM in `ale_py/roms/` of the `ale-py==0.12.1` wheel (108), sorted: task `i` is
/// `GAMES[i]`, whose ROM is `<rom_dir>/GAMES[i].bin`.
pub const GAMES: [&str; 108] = [
    "adventure",
    "air_raid",
    "alien",
    "amidar",
    "assault",
    "asterix",
    "asteroids",
    "atlantis",
    "atlantis2",
    "backgammon",
    "bank_heist",
    "basic_math",
    "battle_zone",
    "beam_rider",
    "berzerk",
    "blackjack",
    "bowling",
    "boxing",
    "breakout",
    "carnival",
    "casino",
    "centipede",
    "chopper_command",
    "combat",
    "crazy_climber",
    "crossbow",
    "darkchambers",
    "defender",
    "demon_attack",
    "donkey_kong",
    "double_dunk",
    "earthworld",
    "elevator_action",
    "enduro",
    "entombed",
    "et",
    "fishing_derby",
    "flag_capture",
    "freeway",
    "frogger",
    "frostbite",
    "galaxian",
    "gopher",
    "gravitar",
    "hangman",
    "haunted_house",
    "hero",
    "human_cannonball",
    "ice_hockey",
    "jamesbond",
    "journey_escape",
    "joust",
    "kaboom",
    "kangaroo",
    "keystone_kapers",
    "king_kong",
    "klax",
    "koolaid",
    "krull",
    "kung_fu_master",
    "laser_gates",
    "lost_luggage",
    "mario_bros",
    "maze_craze",
    "miniature_golf",
    "montezuma_revenge",
    "mr_do",
    "ms_pacman",
    "name_this_game",
    "othello",
    "pacman",
    "phoenix",
    "pitfall",
    "pitfall2",
    "pong",
    "pooyan",
    "private_eye",
    "qbert",
    "riverraid",
    "road_runner",
    "robotank",
    "seaquest",
    "sir_lancelot",
    "skiing",
    "solaris",
    "space_invaders",
    "space_war",
    "star_gunner",
    "superman",
    "surround",
    "tennis",
    "tetris",
    "tic_tac_toe_3d",
    "time_pilot",
    "trondead",
    "turmoil",
    "tutankham",
    "up_n_down",
    "venture",
    "video_checkers",
    "video_chess",
    "video_cube",
    "video_pinball",
    "warlords",
    "wizard_of_wor",
    "word_zapper",
    "yars_revenge",
    "zaxxon",
];

/// A named set of games (selectable as `atari:<name>` in experiment files).
#[derive(Debug, Clone, Copy)]
pub struct GameSet {
    /// Name used in task selectors.
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// The games.
    pub games: &'static [&'static str],
}

/// The game sets of the fine-tuning-versus-meta-RL study's Atari experiments (the author's
/// `main_mt.py`): 5 and 10 training games and the 5 held-out test games.
pub const SETS: [GameSet; 3] = [
    GameSet {
        name: "train-5",
        description: "the study's 5 pretraining games",
        games: &["breakout", "demon_attack", "robotank", "bank_heist", "solaris"],
    },
    GameSet {
        name: "train-10",
        description: "the study's 10 pretraining games",
        games: &[
            "breakout",
            "demon_attack",
            "robotank",
            "bank_heist",
            "solaris",
            "alien",
            "seaquest",
            "asteroids",
            "krull",
            "frostbite",
        ],
    },
    GameSet {
        name: "test",
        description: "the study's 5 held-out test games",
        games: &["pong", "assault", "battle_zone", "ms_pacman", "beam_rider"],
    },
];

/// Task index of `name`.
pub fn index(name: &str) -> Option<u64> {
    GAMES.iter().position(|g| *g == name).map(|i| i as u64)
}

/// The task indices of a set.
pub fn set_tasks(set: &GameSet) -> Vec<u64> {
    set.games.iter().map(|g| index(g).expect("every set game is a ROM of the wheel")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn games_are_sorted_and_unique_and_sets_name_real_games() {
        assert!(GAMES.windows(2).all(|w| w[0] < w[1]));
        for set in SETS {
            assert_eq!(set_tasks(&set).len(), set.games.len());
        }
        assert_eq!(index("pong"), Some(GAMES.iter().position(|g| *g == "pong").unwrap() as u64));
        assert_eq!(index("not_a_game"), None);
    }
}
