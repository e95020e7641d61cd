//! A safe handle on one ALE emulator, over the `extern "C"` shim in `csrc/shim.cpp`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use metarl_plugin_api::types::PluginError;

extern "C" {
    fn metarl_ale_quiet();
    fn metarl_ale_new(err: *mut c_char, cap: usize) -> *mut c_void;
    fn metarl_ale_delete(ale: *mut c_void);
    fn metarl_ale_set_int(ale: *mut c_void, key: *const c_char, value: c_int, err: *mut c_char, cap: usize) -> c_int;
    fn metarl_ale_set_float(ale: *mut c_void, key: *const c_char, value: f32, err: *mut c_char, cap: usize) -> c_int;
    fn metarl_ale_set_bool(ale: *mut c_void, key: *const c_char, value: c_int, err: *mut c_char, cap: usize) -> c_int;
    fn metarl_ale_load_rom(ale: *mut c_void, path: *const c_char, err: *mut c_char, cap: usize) -> c_int;
    fn metarl_ale_act(ale: *mut c_void, action: c_int) -> c_int;
    fn metarl_ale_game_over(ale: *mut c_void) -> c_int;
    fn metarl_ale_game_truncated(ale: *mut c_void) -> c_int;
    fn metarl_ale_reset_game(ale: *mut c_void);
    fn metarl_ale_lives(ale: *mut c_void) -> c_int;
    fn metarl_ale_episode_frame_number(ale: *mut c_void) -> c_int;
    fn metarl_ale_minimal_actions(ale: *mut c_void, out: *mut c_int, cap: c_int) -> c_int;
    fn metarl_ale_screen_height(ale: *mut c_void) -> c_int;
    fn metarl_ale_screen_width(ale: *mut c_void) -> c_int;
    fn metarl_ale_screen_grayscale(ale: *mut c_void, out: *mut u8);
}

/// ALE's full action set has 18 actions (player A).
pub const FULL_ACTIONS: usize = 18;
/// ALE's NOOP.
pub const NOOP: i32 = 0;

const ERR_CAP: usize = 1024;

/// Settings applied before a ROM is loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// ALE's `random_seed` (sticky actions draw from it).
    pub seed: i32,
    /// ALE's `repeat_action_probability` (sticky actions; 0 = off).
    pub repeat_action_probability: f32,
    /// ALE's `max_num_frames_per_episode` (0 = no cap): the game is truncated after it.
    pub max_frames: i32,
}

/// One emulator with one ROM loaded.
pub struct Ale {
    ptr: *mut c_void,
    height: usize,
    width: usize,
    minimal: Vec<i32>,
}

// SAFETY: an ALEInterface is a plain object with no thread affinity; `Ale` owns it
// exclusively and every method takes `&mut self` or `&self` without interior sharing.
unsafe impl Send for Ale {}

fn check(rc: c_int, err: &[c_char], what: &str) -> Result<(), PluginError> {
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates what it writes; the buffer starts zeroed.
    let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().trim().to_string();
    Err(PluginError::failed(format!("{what}: {msg}")))
}

impl Ale {
    /// Creates an emulator, applies `settings` and loads the ROM at `rom`.
    pub fn new(rom: &Path, settings: Settings) -> Result<Self, PluginError> {
        let mut err = vec![0 as c_char; ERR_CAP];
        // SAFETY: the shim only sets a static log level.
        unsafe { metarl_ale_quiet() };
        // SAFETY: `err` has ERR_CAP bytes.
        let ptr = unsafe { metarl_ale_new(err.as_mut_ptr(), ERR_CAP) };
        if ptr.is_null() {
            check(-1, &err, "ALE could not be created")?;
        }
        let mut ale = Ale { ptr, height: 0, width: 0, minimal: Vec::new() };
        let key = |k: &str| CString::new(k).expect("no NUL in keys");
        // SAFETY: `ptr` is a live ALEInterface; keys are NUL-terminated; `err` has ERR_CAP bytes.
        unsafe {
            check(
                metarl_ale_set_int(ptr, key("random_seed").as_ptr(), settings.seed, err.as_mut_ptr(), ERR_CAP),
                &err,
                "random_seed",
            )?;
            check(
                metarl_ale_set_float(
                    ptr,
                    key("repeat_action_probability").as_ptr(),
                    settings.repeat_action_probability,
                    err.as_mut_ptr(),
                    ERR_CAP,
                ),
                &err,
                "repeat_action_probability",
            )?;
            check(
                metarl_ale_set_int(
                    ptr,
                    key("max_num_frames_per_episode").as_ptr(),
                    settings.max_frames,
                    err.as_mut_ptr(),
                    ERR_CAP,
                ),
                &err,
                "max_num_frames_per_episode",
            )?;
            // One emulator frame per act: the action repeat and frame max are ours.
            check(
                metarl_ale_set_int(ptr, key("frame_skip").as_ptr(), 1, err.as_mut_ptr(), ERR_CAP),
                &err,
                "frame_skip",
            )?;
            check(
                metarl_ale_set_bool(ptr, key("color_averaging").as_ptr(), 0, err.as_mut_ptr(), ERR_CAP),
                &err,
                "color_averaging",
            )?;
        }
        let path = CString::new(rom.as_os_str().as_encoded_bytes())
            .map_err(|_| PluginError::invalid(format!("ROM path {} contains a NUL byte", rom.display())))?;
        // SAFETY: as above.
        check(
            unsafe { metarl_ale_load_rom(ptr, path.as_ptr(), err.as_mut_ptr(), ERR_CAP) },
            &err,
            &format!("loading ROM {}", rom.display()),
        )?;
        // SAFETY: a ROM is loaded, so the screen and action sets exist.
        unsafe {
            ale.height = metarl_ale_screen_height(ptr) as usize;
            ale.width = metarl_ale_screen_width(ptr) as usize;
            let mut set = [0 as c_int; FULL_ACTIONS];
            let n = metarl_ale_minimal_actions(ptr, set.as_mut_ptr(), FULL_ACTIONS as c_int);
            ale.minimal = set[..(n.max(0) as usize).min(FULL_ACTIONS)].to_vec();
        }
        Ok(ale)
    }

    /// The game's minimal action set (ALE action ids).
    pub fn minimal_actions(&self) -> &[i32] {
        &self.minimal
    }
    /// Screen height and width in pixels (210 x 160 for every supported game).
    pub fn screen_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
    /// Emulates one frame with ALE action `action`; the frame's reward.
    pub fn act(&mut self, action: i32) -> i32 {
        // SAFETY: live emulator; ALE ignores actions outside its enum range.
        unsafe { metarl_ale_act(self.ptr, action) }
    }
    /// The game ended (lost or truncated at the frame cap).
    pub fn game_over(&self) -> bool {
        // SAFETY: live emulator.
        unsafe { metarl_ale_game_over(self.ptr) != 0 }
    }
    /// The game hit the frame cap.
    pub fn game_truncated(&self) -> bool {
        // SAFETY: live emulator.
        unsafe { metarl_ale_game_truncated(self.ptr) != 0 }
    }
    /// Restarts the game.
    pub fn reset_game(&mut self) {
        // SAFETY: live emulator.
        unsafe { metarl_ale_reset_game(self.ptr) }
    }
    /// Lives left.
    pub fn lives(&self) -> i32 {
        // SAFETY: live emulator.
        unsafe { metarl_ale_lives(self.ptr) }
    }
    /// Frames emulated in this game.
    pub fn episode_frame_number(&self) -> i32 {
        // SAFETY: live emulator.
        unsafe { metarl_ale_episode_frame_number(self.ptr) }
    }
    /// Writes the screen in grayscale into `out` (`height * width` bytes).
    pub fn grayscale(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.height * self.width, "grayscale buffer size");
        // SAFETY: `out` holds exactly one screen.
        unsafe { metarl_ale_screen_grayscale(self.ptr, out.as_mut_ptr()) }
    }
}

impl Drop for Ale {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from metarl_ale_new and is dropped once.
        unsafe { metarl_ale_delete(self.ptr) }
    }
}
