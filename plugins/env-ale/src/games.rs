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

/// Random and human reference scores of the Atari-57 games, `(game, random, human)`: a
/// uniformly random agent's and a professional human tester's mean score under the standard
/// protocol (up to 30 no-op starts, episodes capped at 108k frames). DQN (Mnih et al. 2015)
/// published them for 49 games, later work for all 57; these are the values of DeepMind's DQN
/// Zoo (`atari_data.py`), which DER's paper and rliable use too. The study's held-out games'
/// pairs are those in `../shared/FACTS.md`.
pub const REFERENCE_SCORES: [(&str, f64, f64); 57] = [
    ("alien", 227.8, 7127.7),
    ("amidar", 5.8, 1719.5),
    ("assault", 222.4, 742.0),
    ("asterix", 210.0, 8503.3),
    ("asteroids", 719.1, 47388.7),
    ("atlantis", 12850.0, 29028.1),
    ("bank_heist", 14.2, 753.1),
    ("battle_zone", 2360.0, 37187.5),
    ("beam_rider", 363.9, 16926.5),
    ("berzerk", 123.7, 2630.4),
    ("bowling", 23.1, 160.7),
    ("boxing", 0.1, 12.1),
    ("breakout", 1.7, 30.5),
    ("centipede", 2090.9, 12017.0),
    ("chopper_command", 811.0, 7387.8),
    ("crazy_climber", 10780.5, 35829.4),
    ("defender", 2874.5, 18688.9),
    ("demon_attack", 152.1, 1971.0),
    ("double_dunk", -18.6, -16.4),
    ("enduro", 0.0, 860.5),
    ("fishing_derby", -91.7, -38.7),
    ("freeway", 0.0, 29.6),
    ("frostbite", 65.2, 4334.7),
    ("gopher", 257.6, 2412.5),
    ("gravitar", 173.0, 3351.4),
    ("hero", 1027.0, 30826.4),
    ("ice_hockey", -11.2, 0.9),
    ("jamesbond", 29.0, 302.8),
    ("kangaroo", 52.0, 3035.0),
    ("krull", 1598.0, 2665.5),
    ("kung_fu_master", 258.5, 22736.3),
    ("montezuma_revenge", 0.0, 4753.3),
    ("ms_pacman", 307.3, 6951.6),
    ("name_this_game", 2292.3, 8049.0),
    ("phoenix", 761.4, 7242.6),
    ("pitfall", -229.4, 6463.7),
    ("pong", -20.7, 14.6),
    ("private_eye", 24.9, 69571.3),
    ("qbert", 163.9, 13455.0),
    ("riverraid", 1338.5, 17118.0),
    ("road_runner", 11.5, 7845.0),
    ("robotank", 2.2, 11.9),
    ("seaquest", 68.4, 42054.7),
    ("skiing", -17098.1, -4336.9),
    ("solaris", 1236.3, 12326.7),
    ("space_invaders", 148.0, 1668.7),
    ("star_gunner", 664.0, 10250.0),
    ("surround", -10.0, 6.5),
    ("tennis", -23.8, -8.3),
    ("time_pilot", 3568.0, 5229.2),
    ("tutankham", 11.4, 167.6),
    ("up_n_down", 533.4, 11693.2),
    ("venture", 0.0, 1187.5),
    ("video_pinball", 16256.9, 17667.9),
    ("wizard_of_wor", 563.5, 4756.5),
    ("yars_revenge", 3092.9, 54576.9),
    ("zaxxon", 32.5, 9173.3),
];

/// The family's reference scores: every Atari-57 game, human-normalised.
pub fn reference_tasks() -> Vec<(u64, f64, f64)> {
    REFERENCE_SCORES.iter().map(|&(g, random, human)| (index(g).expect("every Atari-57 game is a ROM of the wheel"), random, human)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_atari_57_game_with_references_is_a_rom() {
        let tasks = reference_tasks();
        assert_eq!(tasks.len(), 57);
        assert!(tasks.iter().all(|&(_, random, human)| random.is_finite() && human > random));
        // The pairs the study's held-out games are normalised with (FACTS).
        assert!(tasks.contains(&(index("pong").unwrap(), -20.7, 14.6)));
        assert!(tasks.contains(&(index("ms_pacman").unwrap(), 307.3, 6951.6)));
    }

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
