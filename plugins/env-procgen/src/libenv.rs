//! The gym3 libenv C ABI (`gym3/libenv.h`) as Procgen's `libenv.so` exports it, plus the two
//! extra functions Procgen adds (`get_state`, `set_state`), and a vectorised env over it.
//!
//! Procgen calls `fatal()` (which exits the process) on an unknown option, a bad option type or
//! a game/mode combination it does not support, so everything passed here must already have
//! been validated by the caller.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use metarl_plugin_api::types::PluginError;

/// Height x width x channels of one observation (Procgen's `RES_W`/`RES_H` are fixed forever).
pub const OBS_BYTES: usize = 64 * 64 * 3;
/// Procgen's `MAX_STATE_SIZE` in env.py: the buffer size Python passes to `get_state`.
const MAX_STATE_SIZE: usize = 1 << 20;

const LIBENV_VERSION: c_int = 1;
const MAX_NAME_LEN: usize = 128;
const DTYPE_UINT8: c_int = 1;
const DTYPE_INT32: c_int = 2;
const SPACE_OBSERVATION: c_int = 1;
const SPACE_ACTION: c_int = 2;
const SPACE_INFO: c_int = 3;

#[repr(C)]
struct LibenvOption {
    name: [c_char; MAX_NAME_LEN],
    dtype: c_int,
    count: c_int,
    data: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LibenvOptions {
    items: *mut LibenvOption,
    count: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
union LibenvValue {
    uint8: u8,
    int32: i32,
    float32: f32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LibenvTensortype {
    name: [c_char; MAX_NAME_LEN],
    scalar_type: c_int,
    dtype: c_int,
    shape: [c_int; 16],
    ndim: c_int,
    low: LibenvValue,
    high: LibenvValue,
}

#[repr(C)]
struct LibenvBuffers {
    ob: *mut *mut c_void,
    rew: *mut f32,
    first: *mut u8,
    info: *mut *mut c_void,
    ac: *mut *mut c_void,
}

type Handle = *mut c_void;

/// The functions of one loaded `libenv.so`. Loaded once per file and never unloaded: Procgen
/// keeps process-wide state (assets loaded once, Qt) and plugins are never unloaded either.
pub struct Libenv {
    version: unsafe extern "C" fn() -> c_int,
    make: unsafe extern "C" fn(c_int, LibenvOptions) -> Handle,
    get_tensortypes: unsafe extern "C" fn(Handle, c_int, *mut LibenvTensortype) -> c_int,
    set_buffers: unsafe extern "C" fn(Handle, *mut LibenvBuffers),
    observe: unsafe extern "C" fn(Handle),
    act: unsafe extern "C" fn(Handle),
    close: unsafe extern "C" fn(Handle),
    get_state: unsafe extern "C" fn(Handle, c_int, *mut c_char, c_int) -> c_int,
    set_state: unsafe extern "C" fn(Handle, c_int, *mut c_char, c_int),
}

/// Loads (or returns the already loaded) `libenv.so` at `path`.
pub fn load(path: &Path) -> Result<&'static Libenv, PluginError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, &'static Libenv>>> = OnceLock::new();
    let mut loaded = LOADED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lib) = loaded.get(path) {
        return Ok(lib);
    }
    let err = |e: libloading::Error| PluginError::failed(format!("cannot load {}: {e}", path.display()));
    // The same flags as gym3's CEnv: DEEPBIND keeps the bundled Qt and libenv's own symbols
    // from binding to same-named symbols elsewhere in the process.
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL | libc::RTLD_DEEPBIND;
    // SAFETY: loading runs the library's initialisers; libenv.so is a plain C++ library.
    let lib = unsafe { libloading::os::unix::Library::open(Some(path), flags) }.map_err(err)?;
    // SAFETY: the signatures are those of gym3/libenv.h and procgen's vecgame.cpp.
    let f = unsafe {
        Libenv {
            version: *lib.get(b"libenv_version\0").map_err(err)?,
            make: *lib.get(b"libenv_make\0").map_err(err)?,
            get_tensortypes: *lib.get(b"libenv_get_tensortypes\0").map_err(err)?,
            set_buffers: *lib.get(b"libenv_set_buffers\0").map_err(err)?,
            observe: *lib.get(b"libenv_observe\0").map_err(err)?,
            act: *lib.get(b"libenv_act\0").map_err(err)?,
            close: *lib.get(b"libenv_close\0").map_err(err)?,
            get_state: *lib.get(b"get_state\0").map_err(err)?,
            set_state: *lib.get(b"set_state\0").map_err(err)?,
        }
    };
    // SAFETY: takes no arguments.
    let v = unsafe { (f.version)() };
    if v != LIBENV_VERSION {
        return Err(PluginError::failed(format!(
            "{} speaks libenv version {v}, expected {LIBENV_VERSION}",
            path.display()
        )));
    }
    std::mem::forget(lib);
    let f: &'static Libenv = Box::leak(Box::new(f));
    loaded.insert(path.to_path_buf(), f);
    Ok(f)
}

/// A libenv option value.
pub enum Opt {
    Int(i32),
    Bool(bool),
    Str(String),
}

/// One `VecGame`: `num` games stepped together, plus the buffers libenv writes into.
///
/// libenv is handed pointers to these buffers once (`libenv_set_buffers` may only be called
/// before the first reset), so they live as long as the handle and are never reallocated.
pub struct VecEnv {
    lib: &'static Libenv,
    handle: Handle,
    num: usize,
    obs: Vec<u8>,
    rew: Vec<f32>,
    first: Vec<u8>,
    act: Vec<i32>,
    level_seed: Vec<i32>,
    prev_level_seed: Vec<i32>,
    prev_level_complete: Vec<u8>,
    /// Buffers for `get_state`, one per thread that edits states.
    states: Vec<Vec<u8>>,
}

// SAFETY: libenv envs may be used from any thread, one thread at a time ("different
// environments must be usable from different threads simultaneously"); `&mut self` ensures
// one caller at a time.
unsafe impl Send for VecEnv {}

/// Serialises `libenv_make`: game construction touches process-wide asset caches.
static MAKE_LOCK: Mutex<()> = Mutex::new(());

impl VecEnv {
    /// Creates `num` games with `options` and waits for their first observation.
    pub fn new(lib: &'static Libenv, num: usize, options: &[(&str, Opt)]) -> Result<Self, PluginError> {
        // Keep every option's data alive until libenv_make returns (Python keeps it for the
        // env's life; Procgen only reads it while constructing).
        let mut data: Vec<Vec<u8>> = Vec::with_capacity(options.len());
        let mut items: Vec<LibenvOption> = Vec::with_capacity(options.len());
        for (name, value) in options {
            let (dtype, count, bytes) = match value {
                Opt::Int(v) => (DTYPE_INT32, 1, v.to_ne_bytes().to_vec()),
                Opt::Bool(b) => (DTYPE_UINT8, 1, vec![*b as u8]),
                Opt::Str(s) => (DTYPE_UINT8, s.len() as c_int, s.as_bytes().to_vec()),
            };
            let mut opt = LibenvOption { name: [0; MAX_NAME_LEN], dtype, count, data: std::ptr::null_mut() };
            assert!(name.len() < MAX_NAME_LEN - 1);
            for (d, s) in opt.name.iter_mut().zip(name.bytes()) {
                *d = s as c_char;
            }
            data.push(bytes);
            opt.data = data.last_mut().unwrap().as_mut_ptr().cast();
            items.push(opt);
        }
        let opts = LibenvOptions { items: items.as_mut_ptr(), count: items.len() as c_int };
        let handle = {
            let _g = MAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: options were validated by the caller; data outlives the call.
            unsafe { (lib.make)(num as c_int, opts) }
        };
        if handle.is_null() {
            return Err(PluginError::failed("libenv_make returned no environment"));
        }
        let mut env = VecEnv {
            lib,
            handle,
            num,
            obs: vec![0; num * OBS_BYTES],
            rew: vec![0.0; num],
            first: vec![0; num],
            act: vec![0; num],
            level_seed: vec![0; num],
            prev_level_seed: vec![0; num],
            prev_level_complete: vec![0; num],
            states: Vec::new(),
        };
        env.check_spaces_and_set_buffers()?;
        env.observe();
        Ok(env)
    }

    fn tensortypes(&self, space: c_int) -> Vec<LibenvTensortype> {
        // SAFETY: a null pointer asks for the count; then the array has room for all of them.
        unsafe {
            let n = (self.lib.get_tensortypes)(self.handle, space, std::ptr::null_mut());
            let mut v = Vec::with_capacity(n.max(0) as usize);
            (self.lib.get_tensortypes)(self.handle, space, v.as_mut_ptr());
            v.set_len(n.max(0) as usize);
            v
        }
    }

    /// Checks that the spaces are the ones this adapter was written for, then lends libenv
    /// the buffers (this starts the games' initial reset).
    fn check_spaces_and_set_buffers(&mut self) -> Result<(), PluginError> {
        let name = |t: &LibenvTensortype| {
            // SAFETY: libenv writes NUL-terminated names of at most MAX_NAME_LEN bytes.
            unsafe { CStr::from_ptr(t.name.as_ptr()) }.to_string_lossy().into_owned()
        };
        let shape = |t: &LibenvTensortype| t.shape[..t.ndim.clamp(0, 16) as usize].to_vec();
        let bad = |what: String| {
            Err(PluginError::failed(format!("unexpected Procgen {what}; this adapter expects procgen 0.10.7")))
        };

        let ob = self.tensortypes(SPACE_OBSERVATION);
        if ob.len() != 1 || name(&ob[0]) != "rgb" || ob[0].dtype != DTYPE_UINT8 || shape(&ob[0]) != [64, 64, 3] {
            return bad("observation space".into());
        }
        let ac = self.tensortypes(SPACE_ACTION);
        // SAFETY: int32 dtype checked first.
        if ac.len() != 1 || ac[0].dtype != DTYPE_INT32 || unsafe { ac[0].high.int32 } != 14 {
            return bad("action space".into());
        }
        let n = self.num;
        let (obs, act) = (self.obs.as_mut_ptr(), self.act.as_mut_ptr());
        // SAFETY (both): offsets stay within the buffers of `n` elements.
        let mut ob_ptrs: Vec<*mut c_void> = (0..n).map(|i| unsafe { obs.add(i * OBS_BYTES) }.cast()).collect();
        let mut ac_ptrs: Vec<*mut c_void> = (0..n).map(|i| unsafe { act.add(i) }.cast()).collect();
        let mut info_ptrs: Vec<*mut c_void> = Vec::new();
        for t in self.tensortypes(SPACE_INFO) {
            let (dtype, base): (c_int, *mut c_void) = match name(&t).as_str() {
                "level_seed" => (DTYPE_INT32, self.level_seed.as_mut_ptr().cast()),
                "prev_level_seed" => (DTYPE_INT32, self.prev_level_seed.as_mut_ptr().cast()),
                "prev_level_complete" => (DTYPE_UINT8, self.prev_level_complete.as_mut_ptr().cast()),
                other => return bad(format!("info field '{other}'")),
            };
            if t.dtype != dtype || t.ndim != 0 {
                return bad(format!("info field '{}'", name(&t)));
            }
            let size = if dtype == DTYPE_INT32 { 4 } else { 1 };
            // SAFETY: each info buffer holds `n` elements of `size` bytes.
            info_ptrs.extend((0..n).map(|i| unsafe { base.cast::<u8>().add(i * size).cast::<c_void>() }));
        }
        if info_ptrs.len() != 3 * n {
            return bad("info space".into());
        }
        let mut bufs = LibenvBuffers {
            ob: ob_ptrs.as_mut_ptr(),
            rew: self.rew.as_mut_ptr(),
            first: self.first.as_mut_ptr(),
            info: info_ptrs.as_mut_ptr(),
            ac: ac_ptrs.as_mut_ptr(),
        };
        // SAFETY: libenv copies the pointer arrays; the pointed-to buffers live in `self` (heap
        // allocations that never move) until `libenv_close` in Drop.
        unsafe { (self.lib.set_buffers)(self.handle, &mut bufs) };
        Ok(())
    }

    /// Steps every game with the actions in [`VecEnv::actions_mut`] and waits for the results.
    pub fn step(&mut self) {
        // SAFETY: a live handle; buffers are set.
        unsafe { (self.lib.act)(self.handle) };
        self.observe();
    }

    fn observe(&mut self) {
        // SAFETY: waits for libenv's stepping threads; afterwards no thread writes the buffers.
        unsafe { (self.lib.observe)(self.handle) };
    }

    /// Actions read by the next [`VecEnv::step`]; `-1` makes a game end its episode.
    pub fn actions_mut(&mut self) -> &mut [i32] {
        &mut self.act
    }
    /// Observations, env-major, `OBS_BYTES` each.
    pub fn obs(&self) -> &[u8] {
        &self.obs
    }
    /// Rewards of the last step.
    pub fn rew(&self) -> &[f32] {
        &self.rew
    }
    /// 1 where the last step ended an episode (the observation is then the next episode's first).
    pub fn first(&self) -> &[u8] {
        &self.first
    }
    /// Level of each current observation.
    pub fn level_seed(&self) -> &[i32] {
        &self.level_seed
    }
    /// Level played before the last step.
    pub fn prev_level_seed(&self) -> &[i32] {
        &self.prev_level_seed
    }
    /// 1 where the last step completed its level.
    pub fn prev_level_complete(&self) -> &[u8] {
        &self.prev_level_complete
    }

    /// Lets `edit` inspect (and change) the serialised state of game `i` (Procgen's
    /// `get_state`); if it returns true, the game is restored from the edited state, and
    /// Procgen re-renders its observation.
    pub fn edit_state<E>(&mut self, i: usize, edit: impl FnOnce(&mut [u8]) -> Result<bool, E>) -> Result<(), E> {
        assert!(i < self.num);
        if self.states.is_empty() {
            self.states.push(vec![0; MAX_STATE_SIZE]);
        }
        edit_one(self.lib, self.handle, i, &mut self.states[0], edit)
    }

    /// [`VecEnv::edit_state`] for each game of `envs` (`edit` gets the position in `envs`),
    /// spread over the machine's cores: a get/set round trip costs as much as ~10 steps.
    ///
    /// Concurrent calls on different games are safe: `get_state`/`set_state` touch only their
    /// game (and its own buffers), and re-rendering on several threads at once is what
    /// Procgen's stepping threads do anyway. All games are idle here (after `observe`).
    pub fn edit_states<E: Send>(
        &mut self,
        envs: &[usize],
        edit: impl Fn(usize, &mut [u8]) -> Result<bool, E> + Sync,
    ) -> Result<(), E> {
        assert!(envs.iter().all(|&i| i < self.num));
        static CORES: OnceLock<usize> = OnceLock::new();
        let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
        let workers = cores.min(envs.len()).max(1);
        while self.states.len() < workers {
            self.states.push(vec![0; MAX_STATE_SIZE]);
        }
        let (lib, handle) = (self.lib, SendHandle(self.handle));
        let chunk = envs.len().div_ceil(workers).max(1);
        let mut parts = self.states.iter_mut().zip(envs.chunks(chunk).enumerate());
        let run = |(buf, (c, part)): (&mut Vec<u8>, (usize, &[usize]))| -> Result<(), E> {
            let handle = &handle;
            for (j, &i) in part.iter().enumerate() {
                edit_one(lib, handle.0, i, buf, |s| edit(c * chunk + j, s))?;
            }
            Ok(())
        };
        let Some(first) = parts.next() else { return Ok(()) };
        std::thread::scope(|scope| {
            let spawned: Vec<_> = parts.map(|p| scope.spawn(|| run(p))).collect();
            let mine = run(first);
            spawned
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .fold(mine, |acc, r| acc.and(r))
        })
    }
}

struct SendHandle(Handle);
// SAFETY: see `edit_states`: each thread uses the handle for different games only.
unsafe impl Send for SendHandle {}
unsafe impl Sync for SendHandle {}

fn edit_one<E>(
    lib: &Libenv,
    handle: Handle,
    i: usize,
    buf: &mut [u8],
    edit: impl FnOnce(&mut [u8]) -> Result<bool, E>,
) -> Result<(), E> {
    debug_assert_eq!(buf.len(), MAX_STATE_SIZE);
    // SAFETY: a buffer of MAX_STATE_SIZE bytes, as Python passes; the game is idle.
    let n = unsafe { (lib.get_state)(handle, i as c_int, buf.as_mut_ptr().cast(), MAX_STATE_SIZE as c_int) };
    let n = n.clamp(0, MAX_STATE_SIZE as c_int);
    if edit(&mut buf[..n as usize])? {
        // SAFETY: a state this library serialised, edited without changing its layout.
        unsafe { (lib.set_state)(handle, i as c_int, buf.as_mut_ptr().cast(), n) };
    }
    Ok(())
}

impl Drop for VecEnv {
    fn drop(&mut self) {
        // SAFETY: waits for the stepping threads and frees the games; the buffers are freed
        // after this, when the fields drop.
        unsafe { (self.lib.close)(self.handle) };
    }
}
