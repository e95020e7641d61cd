// A small C interface over ALE 0.12's C++ `ale::ALEInterface`, which has no C API of its own.
// Every entry point catches C++ exceptions: an error comes back as a message, never as an
// exception crossing into Rust. Part of metarl-env-ale (GPL-2.0-only, like ALE).
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "ale/ale_interface.hpp"

namespace {
// Copies `msg` into `err` (capacity `cap`, NUL-terminated).
void put_error(char* err, size_t cap, const char* msg) {
    if (err == nullptr || cap == 0) return;
    std::strncpy(err, msg, cap - 1);
    err[cap - 1] = '\0';
}
}  // namespace

extern "C" {

// Silences ALE's banner and info messages (errors still go to stderr).
void metarl_ale_quiet(void) { ale::Logger::setMode(ale::Logger::Error); }

void* metarl_ale_new(char* err, size_t cap) {
    try {
        return new ale::ALEInterface();
    } catch (const std::exception& e) {
        put_error(err, cap, e.what());
    } catch (...) {
        put_error(err, cap, "unknown C++ exception in ALEInterface()");
    }
    return nullptr;
}

void metarl_ale_delete(void* ale) { delete static_cast<ale::ALEInterface*>(ale); }

int metarl_ale_set_int(void* ale, const char* key, int value, char* err, size_t cap) {
    try {
        static_cast<ale::ALEInterface*>(ale)->setInt(key, value);
        return 0;
    } catch (const std::exception& e) {
        put_error(err, cap, e.what());
    }
    return -1;
}

int metarl_ale_set_float(void* ale, const char* key, float value, char* err, size_t cap) {
    try {
        static_cast<ale::ALEInterface*>(ale)->setFloat(key, value);
        return 0;
    } catch (const std::exception& e) {
        put_error(err, cap, e.what());
    }
    return -1;
}

int metarl_ale_set_bool(void* ale, const char* key, int value, char* err, size_t cap) {
    try {
        static_cast<ale::ALEInterface*>(ale)->setBool(key, value != 0);
        return 0;
    } catch (const std::exception& e) {
        put_error(err, cap, e.what());
    }
    return -1;
}

// Loads a ROM (and applies the settings set before); the game is reset.
int metarl_ale_load_rom(void* ale, const char* path, char* err, size_t cap) {
    try {
        static_cast<ale::ALEInterface*>(ale)->loadROM(path);
        return 0;
    } catch (const std::exception& e) {
        put_error(err, cap, e.what());
    } catch (...) {
        put_error(err, cap, "unknown C++ exception in loadROM");
    }
    return -1;
}

// One emulator frame (ALE's frame_skip is left at 1): the reward of that frame.
int metarl_ale_act(void* ale, int action) {
    return static_cast<ale::ALEInterface*>(ale)->act(static_cast<ale::Action>(action));
}

int metarl_ale_game_over(void* ale) { return static_cast<ale::ALEInterface*>(ale)->game_over() ? 1 : 0; }

int metarl_ale_game_truncated(void* ale) { return static_cast<ale::ALEInterface*>(ale)->game_truncated() ? 1 : 0; }

void metarl_ale_reset_game(void* ale) { static_cast<ale::ALEInterface*>(ale)->reset_game(); }

int metarl_ale_lives(void* ale) { return static_cast<ale::ALEInterface*>(ale)->lives(); }

int metarl_ale_episode_frame_number(void* ale) {
    return static_cast<ale::ALEInterface*>(ale)->getEpisodeFrameNumber();
}

// Writes up to `cap` actions of the game's minimal set; returns the set's size.
int metarl_ale_minimal_actions(void* ale, int* out, int cap) {
    ale::ActionVect set = static_cast<ale::ALEInterface*>(ale)->getMinimalActionSet();
    for (size_t i = 0; i < set.size() && static_cast<int>(i) < cap; i++) out[i] = static_cast<int>(set[i]);
    return static_cast<int>(set.size());
}

int metarl_ale_screen_height(void* ale) { return static_cast<int>(static_cast<ale::ALEInterface*>(ale)->getScreen().height()); }

int metarl_ale_screen_width(void* ale) { return static_cast<int>(static_cast<ale::ALEInterface*>(ale)->getScreen().width()); }

// The current screen in grayscale (ALE's NTSC palette luminance), height*width bytes.
void metarl_ale_screen_grayscale(void* ale, unsigned char* out) {
    const ale::ALEInterface* a = static_cast<ale::ALEInterface*>(ale);
    const ale::ALEScreen& screen = a->getScreen();
    size_t n = screen.height() * screen.width();
    static thread_local std::vector<unsigned char> buf;
    buf.resize(n);
    a->getScreenGrayscale(buf);
    std::memcpy(out, buf.data(), n);
}

}  // extern "C"
