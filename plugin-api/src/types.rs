//! Plain data that crosses the plugin boundary.
//!
//! Every type here is `#[repr(C)]` or `#[repr(transparent)]` and derives `StableAbi`, so its
//! layout is checked when a plugin loads. Owned buffers are abi_stable `RVec`/`RString`, which
//! free themselves with the allocator of the library that made them.
//!
//! Kinds that later versions may extend (element types, roles, error kinds, plugin kinds,
//! capability flags) are integers wrapped in a struct with associated constants, never
//! exhaustive enums: a 0.2 plugin that meets a value added in 0.2.x sees an unknown constant,
//! not undefined behaviour.

use std::fmt;

use abi_stable::{
    std_types::{RSlice, RSliceMut, RStr, RString, RVec},
    StableAbi,
};

/// Declares a `#[repr(transparent)]` integer newtype whose values are named constants.
macro_rules! open_kind {
    ($(#[$doc:meta])* $name:ident($int:ty) { $($(#[$cdoc:meta])* $konst:ident = $val:expr, $text:literal;)* }) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $($(#[$cdoc])* pub const $konst: $name = $name($val);)*

            /// The constant's name as written in configs and messages (`unknown(N)` otherwise).
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $($name::$konst => $text.into(),)*
                    other => format!("unknown({})", other.0).into(),
                }
            }

            /// Parses a name printed by [`Self::name`].
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$konst),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.name())
            }
        }
    };
}

open_kind! {
    /// The three kinds of plugin.
    PluginKind(u8) {
        /// An environment adapter: task families and batched environments.
        ENV = 0, "env";
        /// A base RL algorithm: an agent that acts, records transitions and updates.
        ALGO = 1, "algo";
        /// A meta-method: drives pretraining and adaptation through the env and algo interfaces.
        META = 2, "meta";
    }
}

impl PluginKind {
    /// The name used in `registry.toml` (`env`, `algo`, `meta`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::ENV => "env",
            PluginKind::ALGO => "algo",
            PluginKind::META => "meta",
            _ => "unknown",
        }
    }
}

open_kind! {
    /// Why a plugin call failed.
    ErrorKind(u8) {
        /// The call could not complete (I/O, numerical failure, ...).
        FAILED = 0, "failed";
        /// The caller passed something invalid: a bad config key, a wrong buffer size, an unknown task.
        INVALID_INPUT = 1, "invalid-input";
        /// The plugin panicked; the panic was caught at the boundary.
        PANICKED = 2, "panicked";
        /// The plugin does not offer this optional capability.
        UNSUPPORTED = 3, "unsupported";
    }
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
    /// A [`ErrorKind::FAILED`] error.
    pub fn failed(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::FAILED, message: msg.to_string().into() }
    }
    /// An [`ErrorKind::INVALID_INPUT`] error.
    pub fn invalid(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::INVALID_INPUT, message: msg.to_string().into() }
    }
    /// An [`ErrorKind::UNSUPPORTED`] error.
    pub fn unsupported(msg: impl fmt::Display) -> Self {
        Self { kind: ErrorKind::UNSUPPORTED, message: msg.to_string().into() }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::PANICKED => write!(f, "panicked: {}", self.message),
            ErrorKind::UNSUPPORTED => write!(f, "unsupported: {}", self.message),
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
    /// The env writes the true last observation of every episode that ends into
    /// `StepBuffers::final_obs`, so off-policy algos can bootstrap through truncations.
    pub const ENV_FINAL_OBS: Caps = Caps(1 << 2);

    // --- algo capabilities ---
    /// Learns from fresh data collected by the current policy (PPO).
    pub const ON_POLICY: Caps = Caps(1 << 16);
    /// Learns from replayed data, sampled per task (Rainbow, C2F-ARM).
    pub const OFF_POLICY: Caps = Caps(1 << 17);
    /// Has a recurrent core whose state the caller carries (`AlgoInfo::state_dim`).
    pub const RECURRENT: Caps = Caps(1 << 18);
    /// Accepts a context vector as extra input (`AlgoRequest::context_dim`).
    pub const CONTEXT: Caps = Caps(1 << 19);
    /// Uses expert demonstrations.
    pub const USES_DEMOS: Caps = Caps(1 << 20);
    /// Acts in discrete (and multi-discrete) action parts.
    pub const DISCRETE: Caps = Caps(1 << 21);
    /// Acts in continuous action parts.
    pub const CONTINUOUS: Caps = Caps(1 << 22);
    /// Feeds previous action, reward and done flag into its recurrent core (RL² inputs).
    pub const RL2_INPUTS: Caps = Caps(1 << 23);
    /// Takes per-task context rows in `UpdatePlan::context` and returns dL/d(context) per row
    /// (`UpdateStats::context_grad`): what PEARL's encoder learns from.
    pub const CONTEXT_GRAD: Caps = Caps(1 << 24);
    /// Acts in composite action spaces (more than one part).
    pub const COMPOSITE_ACTIONS: Caps = Caps(1 << 25);
    /// Takes observations of more than one part.
    pub const MULTI_PART_OBS: Caps = Caps(1 << 26);

    const NAMES: &'static [(Caps, &'static str)] = &[
        (Caps::ENV_DEMOS, "demos"),
        (Caps::ENV_TRIALS, "trials"),
        (Caps::ENV_FINAL_OBS, "final-obs"),
        (Caps::ON_POLICY, "on-policy"),
        (Caps::OFF_POLICY, "off-policy"),
        (Caps::RECURRENT, "recurrent"),
        (Caps::CONTEXT, "context"),
        (Caps::USES_DEMOS, "uses-demos"),
        (Caps::DISCRETE, "discrete"),
        (Caps::CONTINUOUS, "continuous"),
        (Caps::RL2_INPUTS, "rl2-inputs"),
        (Caps::CONTEXT_GRAD, "context-grad"),
        (Caps::COMPOSITE_ACTIONS, "composite-actions"),
        (Caps::MULTI_PART_OBS, "multi-part-obs"),
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
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct TaskSet {
    /// Number of tasks; task ids are `0..count`.
    pub count: u64,
    /// Names of the tasks (Atari games, Meta-World tasks), `count` of them; empty where tasks
    /// are only numbered (Procgen levels).
    pub names: RVec<RString>,
}

impl TaskSet {
    /// Tasks `0..count`, unnamed.
    pub fn indexed(count: u64) -> Self {
        Self { count, names: RVec::new() }
    }
    /// Named tasks; task `i` is `names[i]`.
    pub fn named<S: AsRef<str>>(names: &[S]) -> Self {
        Self { count: names.len() as u64, names: names.iter().map(|n| RString::from(n.as_ref())).collect() }
    }
    /// Number of tasks in the set.
    pub fn len(&self) -> u64 {
        self.count
    }
    /// True if the set has no task.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The name of task `i`, if tasks are named.
    pub fn name(&self, i: u64) -> Option<&str> {
        self.names.get(i as usize).map(|s| s.as_str())
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

/// A named selection of tasks of one family, offered by the env plugin (0.2.1): the study's
/// game sets (`atari:train-5`), a benchmark's split (ML10's train tasks). Experiment files and
/// the command line name it like a task, after the family: `FAMILY:NAME`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct NamedTaskSet {
    /// The family the tasks belong to.
    pub family: RString,
    /// The set's name: unique within the family, and not the name of one of its tasks.
    pub name: RString,
    /// One line for `metarl plugins list` (where the set comes from).
    pub description: RString,
    /// Task ids within the family, in order, without repeats.
    pub tasks: RVec<u64>,
}

impl NamedTaskSet {
    /// Set `name` of `family`, holding the task ids `tasks`.
    pub fn new(family: &str, name: &str, description: &str, tasks: Vec<u64>) -> Self {
        Self { family: family.into(), name: name.into(), description: description.into(), tasks: tasks.into() }
    }
}

/// Reference scores that put a family's returns on one scale (0.2.2): a task's normalised score
/// is (return − low) / (high − low), so 0 is the low reference and 1 the high one. Atari's
/// human-normalised score has a random agent's score as `low` and a human tester's as `high`.
/// Reports use them for the held-out tasks when every one of them has a pair.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ReferenceScores {
    /// The family whose tasks these are.
    pub family: RString,
    /// What the normalised score is called in reports (`human-normalised score`).
    pub name: RString,
    /// One line: what `low` and `high` are, and where the numbers come from.
    pub description: RString,
    /// The tasks that have references (others are left unnormalised), each once.
    pub tasks: RVec<TaskReference>,
}

/// One task's pair of reference scores; `low` and `high` are finite and differ.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct TaskReference {
    /// Task id within the family.
    pub task: u64,
    /// The score normalised to 0.
    pub low: f64,
    /// The score normalised to 1.
    pub high: f64,
}

// --- spaces: named parts -------------------------------------------------------------------

open_kind! {
    /// Element type of an array.
    Dtype(u8) {
        /// Unsigned bytes (images, masks).
        U8 = 1, "u8";
        /// 32-bit floats (vectors, point clouds, matrices, continuous actions).
        F32 = 2, "f32";
        /// 32-bit signed integers (discrete and multi-discrete actions).
        I32 = 3, "i32";
    }
}

impl Dtype {
    /// Bytes per element (0 for an unknown dtype).
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F32 | Dtype::I32 => 4,
            _ => 0,
        }
    }
}

open_kind! {
    /// What a part of a space means: how a network should treat it.
    Role(u16) {
        /// `u8` image, shape `[height, width, channels]` (HWC, as environments render it).
        IMAGE = 1, "image";
        /// `f32` low-dimensional vector (proprioception, state), shape `[dim]`.
        VECTOR = 2, "vector";
        /// `f32` world-frame point cloud of a camera, shape `[height, width, 3]`.
        POINT_CLOUD = 3, "point-cloud";
        /// `f32` metric depth of a camera, shape `[height, width]`.
        DEPTH = 4, "depth";
        /// `f32` camera intrinsics, shape `[3, 3]`.
        CAMERA_INTRINSICS = 5, "camera-intrinsics";
        /// `f32` camera extrinsics (camera to world), shape `[4, 4]`.
        CAMERA_EXTRINSICS = 6, "camera-extrinsics";
        /// `i32` indices, each in `0..choices` (discrete actions; shape `[k]` is multi-discrete).
        DISCRETE = 7, "discrete";
        /// `f32` values within `[low, high]` (continuous actions).
        CONTINUOUS = 8, "continuous";
        /// `f32` end-effector pose: position xyz then quaternion xyzw, shape `[7]`.
        POSE = 9, "pose";
        /// Anything else: the part's name says what it is.
        OTHER = 100, "other";
    }
}

/// One named part of an observation or action space: dtype, shape (per env) and role.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Part {
    /// Name, unique within the space (`rgb`, `front_point_cloud`, `gripper`).
    pub name: RString,
    /// What the part means.
    pub role: Role,
    /// Element type.
    pub dtype: Dtype,
    /// Shape of one env's value (empty = a scalar).
    pub shape: RVec<u32>,
    /// `i32` discrete parts: every element lies in `0..choices`. 0 for other parts.
    pub choices: u32,
    /// `f32` bounded parts: per-element lower bounds (empty = unbounded).
    pub low: RVec<f32>,
    /// `f32` bounded parts: per-element upper bounds (empty = unbounded).
    pub high: RVec<f32>,
    /// Discrete parts padded to a superset shared by every task of the family (Atari's 18
    /// actions): choices a task lacks behave as a no-op.
    pub padded: bool,
}

impl Part {
    /// A part with no bounds and no choices.
    pub fn new(name: &str, role: Role, dtype: Dtype, shape: &[u32]) -> Self {
        Self {
            name: name.into(),
            role,
            dtype,
            shape: shape.to_vec().into(),
            choices: 0,
            low: RVec::new(),
            high: RVec::new(),
            padded: false,
        }
    }
    /// Elements per env.
    pub fn numel(&self) -> usize {
        self.shape.iter().map(|&d| d as usize).product()
    }
    /// True for an `i32` part of indices in `0..choices`.
    pub fn is_discrete(&self) -> bool {
        self.dtype == Dtype::I32 && self.choices > 0
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}: {} {} [{}]", self.name, self.role, self.dtype, dims.join("x"))?;
        if self.is_discrete() {
            write!(f, " of {}", self.choices)?;
            if self.padded {
                f.write_str(" (padded)")?;
            }
        }
        Ok(())
    }
}

/// An observation or action space: named parts, in a fixed order. Buffers of the space hold
/// one array per part, in this order.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Space {
    /// The parts.
    pub parts: RVec<Part>,
}

/// The observation space of one env.
pub type ObsSpace = Space;
/// The action space of one env.
pub type ActionSpace = Space;

impl Space {
    /// A space of the given parts.
    pub fn of(parts: Vec<Part>) -> Self {
        Self { parts: parts.into() }
    }
    /// One `u8` HWC image part named `image`.
    pub fn image(height: u32, width: u32, channels: u32) -> Self {
        Self::of(vec![Part::new("image", Role::IMAGE, Dtype::U8, &[height, width, channels])])
    }
    /// One `f32` vector part named `vector`.
    pub fn vector(dim: u32) -> Self {
        Self::of(vec![Part::new("vector", Role::VECTOR, Dtype::F32, &[dim])])
    }
    /// One discrete action part named `action`, a scalar in `0..n`.
    pub fn discrete(n: u32) -> Self {
        Self::of(vec![Part { choices: n, ..Part::new("action", Role::DISCRETE, Dtype::I32, &[]) }])
    }
    /// One continuous action part named `action` within `[low, high]`.
    pub fn continuous(low: Vec<f32>, high: Vec<f32>) -> Self {
        let dim = low.len() as u32;
        Self::of(vec![Part { low: low.into(), high: high.into(), ..Part::new("action", Role::CONTINUOUS, Dtype::F32, &[dim]) }])
    }
    /// This space with `part` appended (to build composite spaces).
    pub fn with(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }
    /// The only part of a single-part space.
    pub fn single(&self) -> Option<&Part> {
        if self.parts.len() == 1 {
            self.parts.first()
        } else {
            None
        }
    }
    /// The part named `name` and its index.
    pub fn part(&self, name: &str) -> Option<(usize, &Part)> {
        self.parts.iter().enumerate().find(|(_, p)| p.name.as_str() == name)
    }
    /// For a single discrete scalar part: its number of choices.
    pub fn discrete_choices(&self) -> Option<u32> {
        self.single().filter(|p| p.is_discrete() && p.numel() == 1).map(|p| p.choices)
    }
    /// Checks that names are unique and every part's dtype, shape, choices and bounds agree.
    pub fn validate(&self) -> Result<(), String> {
        if self.parts.is_empty() {
            return Err("a space needs at least one part".into());
        }
        for (i, p) in self.parts.iter().enumerate() {
            if self.parts[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("part name '{}' is used twice", p.name));
            }
            if p.dtype.size() == 0 {
                return Err(format!("part '{}' has unknown dtype {}", p.name, p.dtype));
            }
            if p.shape.contains(&0) {
                return Err(format!("part '{}' has an empty dimension", p.name));
            }
            if p.choices > 0 && p.dtype != Dtype::I32 {
                return Err(format!("part '{}' has choices but is {}, not i32", p.name, p.dtype));
            }
            if (!p.low.is_empty() || !p.high.is_empty()) && (p.low.len() != p.numel() || p.high.len() != p.numel()) {
                return Err(format!("part '{}' has bounds of the wrong length (want {})", p.name, p.numel()));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.parts.iter().map(|p| p.to_string()).collect();
        f.pad(&parts.join(", "))
    }
}

// --- arrays: typed, borrowed buffers ------------------------------------------------------

/// A borrowed, typed, flat array: one part of a batch (`num_envs * part.numel()` elements,
/// env-major). Built only from typed slices, so its bytes are aligned for its dtype; read it
/// back with [`ArrayRef::u8`], [`ArrayRef::f32`] or [`ArrayRef::i32`].
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct ArrayRef<'a> {
    dtype: Dtype,
    bytes: RSlice<'a, u8>,
}

/// A mutably borrowed, typed, flat array: where a callee writes one part of a batch.
#[repr(C)]
#[derive(StableAbi)]
pub struct ArrayMut<'a> {
    dtype: Dtype,
    bytes: RSliceMut<'a, u8>,
}

/// Element types an array can hold.
pub trait Element: Copy + 'static {
    /// The matching dtype.
    const DTYPE: Dtype;
}
impl Element for u8 {
    const DTYPE: Dtype = Dtype::U8;
}
impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
}
impl Element for i32 {
    const DTYPE: Dtype = Dtype::I32;
}

impl<'a> ArrayRef<'a> {
    /// Views `data` as an array.
    pub fn new<T: Element>(data: &'a [T]) -> Self {
        // SAFETY: `data` is a valid slice; its bytes are readable for `'a`, and every dtype here
        // is plain data without padding or invalid bit patterns.
        let bytes = unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data)) };
        Self { dtype: T::DTYPE, bytes: bytes.into() }
    }
    /// An empty `f32` array (an absent column).
    pub fn empty() -> Self {
        Self::new::<f32>(&[])
    }
    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.dtype.size()).unwrap_or(0)
    }
    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The elements, if the array holds `T`s.
    pub fn get<T: Element>(&self) -> Option<&'a [T]> {
        let bytes: &'a [u8] = self.bytes.as_slice();
        cast(self.dtype, bytes)
    }
    /// The elements as bytes, if the array is `u8`.
    pub fn u8(&self) -> Option<&'a [u8]> {
        self.get()
    }
    /// The elements as floats, if the array is `f32`.
    pub fn f32(&self) -> Option<&'a [f32]> {
        self.get()
    }
    /// The elements as integers, if the array is `i32`.
    pub fn i32(&self) -> Option<&'a [i32]> {
        self.get()
    }
}

fn cast<T: Element>(dtype: Dtype, bytes: &[u8]) -> Option<&[T]> {
    let size = std::mem::size_of::<T>();
    if dtype != T::DTYPE || !bytes.len().is_multiple_of(size) || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: dtype, length and alignment were checked; `T` is plain data.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

impl fmt::Debug for ArrayRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArrayRef({} x {})", self.dtype, self.len())
    }
}

impl<'a> ArrayMut<'a> {
    /// Lends `data` as an array to write into.
    pub fn new<T: Element>(data: &'a mut [T]) -> Self {
        // SAFETY: as in `ArrayRef::new`; the exclusive borrow is carried by the `'a` lifetime.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, std::mem::size_of_val(data)) };
        Self { dtype: T::DTYPE, bytes: bytes.into() }
    }
    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.dtype.size()).unwrap_or(0)
    }
    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The elements, mutably, if the array holds `T`s.
    pub fn get_mut<T: Element>(&mut self) -> Option<&mut [T]> {
        let size = std::mem::size_of::<T>();
        let bytes: &mut [u8] = self.bytes.as_mut_slice();
        if self.dtype != T::DTYPE || !bytes.len().is_multiple_of(size) || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return None;
        }
        // SAFETY: dtype, length and alignment were checked; `T` is plain data.
        Some(unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size) })
    }
    /// The elements as bytes, if the array is `u8`.
    pub fn u8(&mut self) -> Option<&mut [u8]> {
        self.get_mut()
    }
    /// The elements as floats, if the array is `f32`.
    pub fn f32(&mut self) -> Option<&mut [f32]> {
        self.get_mut()
    }
    /// The elements as integers, if the array is `i32`.
    pub fn i32(&mut self) -> Option<&mut [i32]> {
        self.get_mut()
    }
    /// A read-only view.
    pub fn as_ref(&self) -> ArrayRef<'_> {
        ArrayRef { dtype: self.dtype, bytes: self.bytes.as_slice().into() }
    }
}

impl fmt::Debug for ArrayMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArrayMut({} x {})", self.dtype, self.len())
    }
}

/// An owned, typed, flat array (demonstrations). Stored in 8-byte words so that every dtype's
/// view is aligned.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Array {
    dtype: Dtype,
    len: u64,
    words: RVec<u64>,
}

impl Array {
    /// Copies `data` into an owned array.
    pub fn from_slice<T: Element>(data: &[T]) -> Self {
        let bytes = std::mem::size_of_val(data);
        let mut words = vec![0u64; bytes.div_ceil(8)];
        // SAFETY: `words` has at least `bytes` bytes; both are plain data.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr() as *const u8, words.as_mut_ptr() as *mut u8, bytes) };
        Self { dtype: T::DTYPE, len: data.len() as u64, words: words.into() }
    }
    /// A borrowed view.
    pub fn as_ref(&self) -> ArrayRef<'_> {
        let bytes = (self.len as usize * self.dtype.size()).min(self.words.len() * 8);
        // SAFETY: `bytes` is within `words`, which lives as long as the borrow of `self`.
        let b = unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, bytes) };
        ArrayRef { dtype: self.dtype, bytes: b.into() }
    }
}

/// A batch of a space's values, borrowed: one [`ArrayRef`] per part, in the space's order.
pub type Arrays<'a> = RSlice<'a, ArrayRef<'a>>;
/// A batch of a space's values, borrowed mutably: one [`ArrayMut`] per part.
pub type ArraysMut<'a> = RSliceMut<'a, ArrayMut<'a>>;

/// An optional column of [`crate::algo::Transitions`] that has no field of its own.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct NamedArray<'a> {
    /// Column name, `snake_case`.
    pub name: RStr<'a>,
    /// One row per env.
    pub data: ArrayRef<'a>,
}

/// Checks that `arrays` fit `space` for `n` envs: one array per part, right dtype and length.
/// `what` names the buffer in the error.
pub fn check_arrays(what: &str, space: &Space, arrays: &[ArrayRef<'_>], n: usize) -> Result<(), String> {
    if arrays.len() != space.parts.len() {
        return Err(format!("{what} has {} parts, the space has {} ({space})", arrays.len(), space.parts.len()));
    }
    for (a, p) in arrays.iter().zip(space.parts.iter()) {
        if a.dtype() != p.dtype {
            return Err(format!("{what} part '{}' is {}, expected {}", p.name, a.dtype(), p.dtype));
        }
        if a.len() != n * p.numel() {
            return Err(format!("{what} part '{}' has {} elements, expected {}", p.name, a.len(), n * p.numel()));
        }
    }
    Ok(())
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
