//! Plain data that crosses the plugin boundary.
//!
//! Every type here is `#[repr(C)]` (or `#[repr(u8)]`) and derives `StableAbi`, so its layout is
//! checked when a plugin loads. Owned buffers are abi_stable `RVec`/`RString`, which free
//! themselves with the allocator of the library that made them.

use std::fmt;

use abi_stable::{
    std_types::{RSlice, RSliceMut, RString, RVec},
    StableAbi,
};

/// The three kinds of plugin.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// An environment adapter: task families and batched environments.
    Env = 0,
    /// A base RL algorithm: an agent that acts, records transitions and updates.
    Algo = 1,
    /// A meta-method: drives pretraining and adaptation through the env and algo interfaces.
    Meta = 2,
}

impl PluginKind {
    /// The name used in `registry.toml` (`env`, `algo`, `meta`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Env => "env",
            PluginKind::Algo => "algo",
            PluginKind::Meta => "meta",
        }
    }

    /// Parses a registry kind name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "env" => Some(PluginKind::Env),
            "algo" => Some(PluginKind::Algo),
            "meta" => Some(PluginKind::Meta),
            _ => None,
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why a plugin call failed.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The call could not complete (I/O, numerical failure, ...).
    Failed = 0,
    /// The caller passed something invalid: a bad config key, a wrong buffer size, an unknown task.
    InvalidInput = 1,
    /// The plugin panicked; the panic was caught at the boundary.
    Panicked = 2,
    /// The plugin does not offer this optional capability.
    Unsupported = 3,
}

/// An error returned across the boundary. The message is one line meant for a person.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The category of failure.
    pub kind: ErrorKind,
    /// A one-line, human-readable description.
    pub message: RString,
}

impl PluginError {
    /// A [`ErrorKind::Failed`] error.
    pub fn failed(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::Failed, message: msg.to_string().into() }
    }
    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::InvalidInput, message: msg.to_string().into() }
    }
    /// An [`ErrorKind::Unsupported`] error.
    pub fn unsupported(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::Unsupported, message: msg.to_string().into() }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Panicked => write!(f, "panicked: {}", self.message),
            ErrorKind::Unsupported => write!(f, "unsupported: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PluginError {}

/// Result type of every plugin call.
pub type PResult<T> = abi_stable::std_types::RResult<T, PluginError>;

/// A set of capability flags. New flags can be added without changing the layout.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(pub u64);

impl Caps {
    /// No capabilities.
    pub const NONE: Caps = Caps(0);

    // --- env capabilities ---
    /// The env can produce expert demonstrations for a task ([`crate::env::Env::demos`]).
    pub const ENV_DEMOS: Caps = Caps(1 << 0);
    /// The env can repeat one task for several episodes (`EnvRequest::trials > 1`, for RL²).
    pub const ENV_TRIALS: Caps = Caps(1 << 1);

    // --- algo capabilities ---
    /// Learns from fresh data collected by the current policy (PPO).
    pub const ON_POLICY: Caps = Caps(1 << 16);
    /// Learns from replayed data, sampled per task (Rainbow, C2F-ARM).
    pub const OFF_POLICY: Caps = Caps(1 << 17);
    /// Has a recurrent core whose state the caller carries (`AlgoInfo::state_dim`).
    pub const RECURRENT: Caps = Caps(1 << 18);
    /// Accepts a context vector as extra input and can return dL/d(context) (PEARL).
    pub const CONTEXT: Caps = Caps(1 << 19);
    /// Uses expert demonstrations.
    pub const USES_DEMOS: Caps = Caps(1 << 20);
    /// Acts in discrete action spaces.
    pub const DISCRETE: Caps = Caps(1 << 21);
    /// Acts in continuous action spaces.
    pub const CONTINUOUS: Caps = Caps(1 << 22);
    /// Feeds previous action, reward and done flag into its recurrent core (RL² inputs).
    pub const RL2_INPUTS: Caps = Caps(1 << 23);

    const NAMES: &'static [(Caps, &'static str)] = &[
        (Caps::ENV_DEMOS, "demos"),
        (Caps::ENV_TRIALS, "trials"),
        (Caps::ON_POLICY, "on-policy"),
        (Caps::OFF_POLICY, "off-policy"),
        (Caps::RECURRENT, "recurrent"),
        (Caps::CONTEXT, "context"),
        (Caps::USES_DEMOS, "uses-demos"),
        (Caps::DISCRETE, "discrete"),
        (Caps::CONTINUOUS, "continuous"),
        (Caps::RL2_INPUTS, "rl2-inputs"),
    ];

    /// True if every flag of `other` is set in `self`.
    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of `required` that `self` lacks.
    pub fn missing(self, required: Caps) -> Caps {
        Caps(required.0 & !self.0)
    }

    /// True if no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Human-readable names of the set flags, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> =
            Self::NAMES.iter().filter(|(c, _)| self.contains(*c)).map(|(_, n)| *n).collect();
        let known = Self::NAMES.iter().fold(0, |acc, (c, _)| acc | c.0);
        if self.0 & !known != 0 {
            out.push("unknown-flags");
        }
        out
    }

    /// Parses a flag name as printed by [`Caps::names`].
    pub fn from_name(name: &str) -> Option<Caps> {
        Self::NAMES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }
}

impl std::ops::BitOr for Caps {
    type Output = Caps;
    fn bitor(self, rhs: Caps) -> Caps {
        Caps(self.0 | rhs.0)
    }
}

impl fmt::Display for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        f.pad(&if names.is_empty() { "-".to_string() } else { names.join(",") })
    }
}

/// How the tasks of a family are enumerated.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum TaskSet {
    /// Finitely many named tasks; task `i` is `names[i]` (Atari games, Meta-World tasks).
    Named(RVec<RString>),
    /// Tasks are indices `0..count` (Procgen levels).
    Indexed {
        /// Number of tasks.
        count: u64,
    },
}

impl TaskSet {
    /// Number of tasks in the set.
    pub fn len(&self) -> u64 {
        match self {
            TaskSet::Named(names) => names.len() as u64,
            TaskSet::Indexed { count } => *count,
        }
    }

    /// True if the set has no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A family of related tasks that one env plugin offers (a Procgen game, the Atari suite, ML10).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct TaskFamily {
    /// Name used in experiment files, unique within the plugin.
    pub name: RString,
    /// One line for `metarl plugins list`.
    pub description: RString,
    /// The tasks.
    pub tasks: TaskSet,
}

/// Element type of observations.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObsKind {
    /// `u8` image, shape `[height, width, channels]` (HWC, as environments render it).
    ImageU8 = 0,
    /// `f32` vector, shape `[dim]`.
    VectorF32 = 1,
}

/// The observation space of one env.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ObsSpace {
    /// Element type.
    pub kind: ObsKind,
    /// Shape of one observation (see [`ObsKind`]).
    pub shape: RVec<u32>,
}

impl ObsSpace {
    /// A `u8` HWC image space.
    pub fn image(height: u32, width: u32, channels: u32) -> Self {
        Self { kind: ObsKind::ImageU8, shape: vec![height, width, channels].into() }
    }
    /// An `f32` vector space.
    pub fn vector(dim: u32) -> Self {
        Self { kind: ObsKind::VectorF32, shape: vec![dim].into() }
    }
    /// Number of elements in one observation.
    pub fn numel(&self) -> usize {
        self.shape.iter().map(|&d| d as usize).product()
    }
}

impl fmt::Display for ObsSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let ty = match self.kind {
            ObsKind::ImageU8 => "u8 image",
            ObsKind::VectorF32 => "f32 vector",
        };
        write!(f, "{ty} {}", dims.join("x"))
    }
}

/// Discrete or continuous actions.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// One integer in `0..n` per env.
    Discrete = 0,
    /// `n` floats per env, within `[low, high]`.
    Continuous = 1,
}

/// The action space of one env.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ActionSpace {
    /// Discrete or continuous.
    pub kind: ActionKind,
    /// Number of discrete actions, or dimension of a continuous action.
    pub n: u32,
    /// Per-dimension lower bounds (continuous only; empty for discrete).
    pub low: RVec<f32>,
    /// Per-dimension upper bounds (continuous only; empty for discrete).
    pub high: RVec<f32>,
    /// True if the space is padded to a superset shared by all tasks of the family
    /// (Atari's full 18-action set); actions a task lacks behave as a no-op.
    pub padded: bool,
}

impl ActionSpace {
    /// A discrete space of `n` actions.
    pub fn discrete(n: u32) -> Self {
        Self { kind: ActionKind::Discrete, n, low: RVec::new(), high: RVec::new(), padded: false }
    }
    /// A continuous box space.
    pub fn continuous(low: Vec<f32>, high: Vec<f32>) -> Self {
        Self { kind: ActionKind::Continuous, n: low.len() as u32, low: low.into(), high: high.into(), padded: false }
    }
    /// Floats (continuous) or integers (discrete) per env.
    pub fn width(&self) -> usize {
        match self.kind {
            ActionKind::Discrete => 1,
            ActionKind::Continuous => self.n as usize,
        }
    }
}

impl fmt::Display for ActionSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ActionKind::Discrete => write!(f, "discrete {}", self.n)?,
            ActionKind::Continuous => write!(f, "continuous {}", self.n)?,
        }
        if self.padded {
            f.write_str(" (padded)")?;
        }
        Ok(())
    }
}

/// A batch of observations, borrowed. Length is `num_envs * ObsSpace::numel()`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub enum ObsRef<'a> {
    /// `u8` images.
    U8(RSlice<'a, u8>),
    /// `f32` vectors.
    F32(RSlice<'a, f32>),
}

impl ObsRef<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ObsRef::U8(s) => s.len(),
            ObsRef::F32(s) => s.len(),
        }
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch of observations, borrowed mutably: the callee writes into the caller's buffer.
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum ObsMut<'a> {
    /// `u8` images.
    U8(RSliceMut<'a, u8>),
    /// `f32` vectors.
    F32(RSliceMut<'a, f32>),
}

impl ObsMut<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ObsMut::U8(s) => s.len(),
            ObsMut::F32(s) => s.len(),
        }
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch of observations, owned.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum ObsBuf {
    /// `u8` images.
    U8(RVec<u8>),
    /// `f32` vectors.
    F32(RVec<f32>),
}

impl ObsBuf {
    /// A zeroed buffer for `n` observations of `space`.
    pub fn zeros(space: &ObsSpace, n: usize) -> Self {
        let len = space.numel() * n;
        match space.kind {
            ObsKind::ImageU8 => ObsBuf::U8(vec![0; len].into()),
            ObsKind::VectorF32 => ObsBuf::F32(vec![0.0; len].into()),
        }
    }
    /// Borrows the buffer.
    pub fn as_ref(&self) -> ObsRef<'_> {
        match self {
            ObsBuf::U8(v) => ObsRef::U8(v.as_rslice()),
            ObsBuf::F32(v) => ObsRef::F32(v.as_rslice()),
        }
    }
    /// Borrows the buffer mutably.
    pub fn as_mut(&mut self) -> ObsMut<'_> {
        match self {
            ObsBuf::U8(v) => ObsMut::U8(v.as_mut_rslice()),
            ObsBuf::F32(v) => ObsMut::F32(v.as_mut_rslice()),
        }
    }
}

/// A batch of actions, borrowed. Discrete: one `i32` per env. Continuous: `n` floats per env.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub enum ActionsRef<'a> {
    /// Discrete action indices.
    Discrete(RSlice<'a, i32>),
    /// Continuous actions, env-major.
    Continuous(RSlice<'a, f32>),
}

/// A batch of actions, borrowed mutably.
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum ActionsMut<'a> {
    /// Discrete action indices.
    Discrete(RSliceMut<'a, i32>),
    /// Continuous actions, env-major.
    Continuous(RSliceMut<'a, f32>),
}

/// A batch of actions, owned.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum ActionBuf {
    /// Discrete action indices.
    Discrete(RVec<i32>),
    /// Continuous actions, env-major.
    Continuous(RVec<f32>),
}

impl ActionBuf {
    /// A zeroed buffer for `n` envs.
    pub fn zeros(space: &ActionSpace, n: usize) -> Self {
        match space.kind {
            ActionKind::Discrete => ActionBuf::Discrete(vec![0; n].into()),
            ActionKind::Continuous => ActionBuf::Continuous(vec![0.0; n * space.n as usize].into()),
        }
    }
    /// Borrows the buffer.
    pub fn as_ref(&self) -> ActionsRef<'_> {
        match self {
            ActionBuf::Discrete(v) => ActionsRef::Discrete(v.as_rslice()),
            ActionBuf::Continuous(v) => ActionsRef::Continuous(v.as_rslice()),
        }
    }
    /// Borrows the buffer mutably.
    pub fn as_mut(&mut self) -> ActionsMut<'_> {
        match self {
            ActionBuf::Discrete(v) => ActionsMut::Discrete(v.as_mut_rslice()),
            ActionBuf::Continuous(v) => ActionsMut::Continuous(v.as_mut_rslice()),
        }
    }
}

/// A named scalar (a loss, an entropy, a learning rate) reported by a plugin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Scalar {
    /// Metric name, `snake_case`.
    pub name: RString,
    /// Value.
    pub value: f64,
}

impl Scalar {
    /// Builds a scalar.
    pub fn new(name: &str, value: f64) -> Self {
        Self { name: name.into(), value }
    }
}
