"""Reference run for tests/ale.rs: plays a fixed action sequence on a ROM with ale-py's own
ALEInterface (one frame per act) and writes, per frame, the reward, lives, game-over flag and
the grey screen. Usage: ale_py_reference.py ROM SEED FRAMES OUT"""
import struct
import sys

from ale_py import ALEInterface, LoggerMode

rom, seed, frames, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ALEInterface.setLoggerMode(LoggerMode.Error)
ale = ALEInterface()
ale.setInt("random_seed", seed)
ale.setFloat("repeat_action_probability", 0.0)
ale.setInt("max_num_frames_per_episode", 108000)
ale.setInt("frame_skip", 1)
ale.setBool("color_averaging", False)
ale.loadROM(rom)
actions = ale.getMinimalActionSet()
state = seed
with open(out, "wb") as f:
    for t in range(frames):
        # The same LCG as the Rust side picks the action.
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        a = actions[(state >> 33) % len(actions)]
        r = ale.act(a)
        f.write(struct.pack("<iiB", r, ale.lives(), 1 if ale.game_over() else 0))
        f.write(ale.getScreenGrayscale().tobytes())
        if ale.game_over():
            ale.reset_game()
