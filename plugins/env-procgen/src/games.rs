//! The 16 Procgen games and what each supports, as in procgen 0.10.7's sources and env.py.

use serde::Deserialize;

/// One game.
pub struct Game {
    /// Procgen's `env_name`.
    pub name: &'static str,
    /// One line for `metarl plugins list`.
    pub description: &'static str,
    /// Episode step limit (`Game::timeout`) outside memory mode.
    timeout: u32,
    /// Supports `distribution_mode = "extreme"`.
    extreme: bool,
    /// Supports `distribution_mode = "memory"`, and its timeout there.
    memory: Option<u32>,
    /// The single level of `distribution_mode = "exploration"` (env.py's EXPLORATION_LEVEL_SEEDS).
    pub exploration_level: Option<u32>,
}

const fn g(name: &'static str, description: &'static str, timeout: u32) -> Game {
    Game { name, description, timeout, extreme: false, memory: None, exploration_level: None }
}

/// All games, sorted by name.
pub static GAMES: [Game; 16] = [
    g("bigfish", "eat smaller fish to grow, avoid bigger ones", 6000),
    g("bossfight", "dodge the boss's projectiles and shoot down its shields", 4000),
    Game {
        memory: Some(1000),
        exploration_level: Some(1259048185),
        ..g("caveflyer", "fly through caves, shoot targets, reach the exit", 1000)
    },
    Game { extreme: true, ..g("chaser", "collect every orb while escaping the chasers (Pac-Man like)", 1000) },
    Game { exploration_level: Some(1561126160), ..g("climber", "climb platforms collecting stars", 1000) },
    Game { exploration_level: Some(1949448038), ..g("coinrun", "platformer: reach the coin at the far end", 1000) },
    Game {
        extreme: true,
        memory: Some(1000),
        ..g("dodgeball", "hit the enemies with balls, then take the exit", 1000)
    },
    g("fruitbot", "scrolling: collect fruit, avoid everything else", 1000),
    Game {
        memory: Some(1000),
        exploration_level: Some(876640971),
        ..g("heist", "collect keys, open doors, steal the gem", 1000)
    },
    Game {
        memory: Some(2000),
        exploration_level: Some(1434825276),
        ..g("jumper", "double-jump through an open world to the carrot", 1000)
    },
    Game {
        extreme: true,
        exploration_level: Some(1318677581),
        ..g("leaper", "cross roads and rivers (Frogger like)", 500)
    },
    Game { memory: Some(500), exploration_level: Some(158988835), ..g("maze", "find the cheese in a maze", 500) },
    Game { memory: Some(1000), ..g("miner", "dig for diamonds, avoid falling boulders, exit", 1000) },
    Game { exploration_level: Some(1123500215), ..g("ninja", "jump across ledges to the mushroom", 1000) },
    g("plunder", "shoot enemy ships, spare friendly ones", 4000),
    Game { extreme: true, ..g("starpilot", "side-scrolling shooter", 1000) },
];

/// Looks a game up by name.
pub fn find(name: &str) -> Option<&'static Game> {
    GAMES.iter().find(|g| g.name == name)
}

/// Names of all games, comma-separated.
pub fn names() -> String {
    GAMES.iter().map(|g| g.name).collect::<Vec<_>>().join(", ")
}

/// Procgen's `distribution_mode`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DistributionMode {
    /// The mode of the Procgen paper's 200-level generalisation protocol.
    #[default]
    Easy,
    /// Procgen's default in Python.
    Hard,
    /// Harder variants of four games.
    Extreme,
    /// Larger, partially observed worlds (six games).
    Memory,
    /// Hard mode on one fixed, hard-to-explore level (eight games).
    Exploration,
}

impl DistributionMode {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Easy => "easy",
            Self::Hard => "hard",
            Self::Extreme => "extreme",
            Self::Memory => "memory",
            Self::Exploration => "exploration",
        }
    }

    /// The value of Procgen's `distribution_mode` option (exploration is hard mode on one level).
    pub fn libenv_value(self) -> i32 {
        match self {
            Self::Easy => 0,
            Self::Hard | Self::Exploration => 1,
            Self::Extreme => 2,
            Self::Memory => 10,
        }
    }
}

impl Game {
    /// Whether the game supports `mode` (Procgen exits the process on an unsupported one).
    pub fn supports(&self, mode: DistributionMode) -> bool {
        match mode {
            DistributionMode::Easy | DistributionMode::Hard => true,
            DistributionMode::Extreme => self.extreme,
            DistributionMode::Memory => self.memory.is_some(),
            DistributionMode::Exploration => self.exploration_level.is_some(),
        }
    }

    /// Procgen's per-level step limit in `mode`.
    pub fn timeout(&self, mode: DistributionMode) -> u32 {
        match (mode, self.memory) {
            (DistributionMode::Memory, Some(t)) => t,
            _ => self.timeout,
        }
    }

    /// Names of the games that support `mode`.
    pub fn supporting(mode: DistributionMode) -> String {
        GAMES.iter().filter(|g| g.supports(mode)).map(|g| g.name).collect::<Vec<_>>().join(", ")
    }
}
