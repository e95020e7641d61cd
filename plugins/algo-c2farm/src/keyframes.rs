//! Keyframe discovery on a demonstration, and C2F-ARM's demo augmentation.
//!
//! C2F-ARM learns from keyframes, not from every step of a demo: the states where the expert
//! changed its gripper or paused are the poses its macro-actions should reach. The rule is
//! stepjam/ARM's `keypoint_discovery` (`arm/demo_loading_utils.py`), the one
//! `plugins/env-rlbench` runs on RLBench demos (`python/rlbench_server.py: keyframes`, with
//! the same test cases as here). Step `i` of an `n`-step demo is a keyframe when `i > 0` and
//!
//! - the gripper opened or closed: `open[i] != open[i-1]`; or
//! - it is the last step, `i == n - 1`; or
//! - the arm **stopped** there: every velocity of step `i` is within `stop_delta` (0.1) of 0,
//!   the gripper is the same over steps `i-2 ..= i+1` (so `i < n - 2`), and no stop was found
//!   in the `refractory` (4) steps before.
//!
//! When the last two keyframes are adjacent steps, the earlier one is dropped. As in ARM's
//! Python, `i-1` and `i-2` wrap around to the demo's end at steps 0 and 1 (the refractory
//! counter is updated at step 0 too, so a stop at step 0 suppresses steps 1..=4). The stop
//! test reads one step's velocities, with the refractory steps keeping one pause from giving
//! several keyframes. ARM reads joint velocities; any per-step velocity vector works (the
//! hand's, for an env without joints).
//!
//! `plugins/env-metaworld` does not use this rule: Meta-World's scripted experts never pause
//! at their waypoints (FACTS: 19/158 replays succeed with it), so that env takes keyframes at
//! its experts' waypoint switches itself and hands out keyframe demos. Both envs' demos arrive
//! already as keyframe transitions; this module serves demos given step by step.
//!
//! **Demo augmentation** ([`augmented_starts`]): every `every_n`-th step (10) before the last
//! keyframe is also a start state, leading through the keyframes after it.

/// The stop rule's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopRule {
    /// A velocity within this of 0 is stillness (`np.allclose(v, 0, atol=delta)`).
    pub stop_delta: f64,
    /// Steps after a stop in which no other stop is looked for.
    pub refractory: i64,
}

impl Default for StopRule {
    /// ARM's: 0.1 and 4 steps.
    fn default() -> Self {
        StopRule { stop_delta: 0.1, refractory: 4 }
    }
}

/// The keyframe steps of a demo with gripper states `open` (any value per step; a change is a
/// keyframe) and per-step `velocities`. Both have one entry per step.
pub fn keyframes<V: AsRef<[f64]>>(open: &[f64], velocities: &[V], rule: StopRule) -> Vec<usize> {
    let n = open.len();
    assert_eq!(velocities.len(), n, "one velocity vector per step");
    // Python's g[i - k]: wraps to the end for i < k.
    let back = |i: usize, k: usize| open[(i + n - k) % n];
    let mut frames = Vec::new();
    let mut wait = 0i64;
    for i in 0..n {
        let steady = i + 2 < n && open[i] == open[i + 1] && open[i] == back(i, 1) && back(i, 2) == back(i, 1);
        let still = velocities[i].as_ref().iter().all(|v| v.abs() <= rule.stop_delta);
        let stopped = wait <= 0 && still && steady;
        wait = if stopped { rule.refractory } else { wait - 1 };
        if i > 0 && (open[i] != open[i - 1] || i == n - 1 || stopped) {
            frames.push(i);
        }
    }
    if frames.len() > 1 && frames[frames.len() - 2] + 1 == frames[frames.len() - 1] {
        frames.remove(frames.len() - 2);
    }
    frames
}

/// Demo augmentation: `(start, keyframes after it)` for steps 0, `every_n`, `2·every_n`, ...
/// of an `n`-step demo, as long as a keyframe lies ahead. Step 0 comes first (the demo
/// itself); `every_n = 0` gives only it.
pub fn augmented_starts(n: usize, keyframes: &[usize], every_n: usize) -> Vec<(usize, Vec<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start + 1 < n {
        let ahead: Vec<usize> = keyframes.iter().copied().filter(|&k| k > start).collect();
        if ahead.is_empty() {
            break;
        }
        out.push((start, ahead));
        if every_n == 0 {
            break;
        }
        start += every_n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVING: [f64; 7] = [0.5; 7];
    const STILL: [f64; 7] = [0.0; 7];

    fn velocities(n: usize, still: impl Fn(usize) -> bool) -> Vec<[f64; 7]> {
        (0..n).map(|i| if still(i) { STILL } else { MOVING }).collect()
    }

    fn case(open: &[f64], still: impl Fn(usize) -> bool) -> Vec<usize> {
        keyframes(open, &velocities(open.len(), still), StopRule::default())
    }

    #[test]
    fn a_gripper_change_and_the_last_step_are_keyframes() {
        assert_eq!(case(&[1., 1., 1., 0., 0., 0., 0., 0.], |_| false), [3, 7]);
    }

    #[test]
    fn a_pause_is_one_keyframe_per_refractory_window() {
        // Still at 4..=10: a stop at 4, none in the 4 steps after it, another at 9; 10 is the
        // second-to-last step, which never is a stop.
        assert_eq!(case(&[1.; 12], |i| (4..=10).contains(&i)), [4, 9, 11]);
    }

    #[test]
    fn of_two_adjacent_final_keyframes_only_the_last_stays() {
        assert_eq!(case(&[1., 1., 1., 1., 0., 0.], |_| false), [5]);
    }

    #[test]
    fn the_first_steps_look_back_through_the_end_of_the_demo() {
        // Always still: steps 0 and 1 see the closed gripper of the last steps through the
        // wrap-around, so they are not steady; 2 is a stop; the close at 5 falls in its
        // refractory steps but counts as a change; 6 is not steady (5 differs from 4); 7 stops.
        assert_eq!(case(&[1., 1., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0.], |_| true), [2, 5, 7, 11]);
    }

    #[test]
    fn the_stop_threshold_is_inclusive() {
        // At the threshold: still from step 0 (a stop at 0, never a keyframe, whose refractory
        // steps put the next stop at 5). Just above it: moving, so only the last step.
        let at = vec![[0.1; 7]; 8];
        assert_eq!(keyframes(&[1.; 8], &at, StopRule::default()), [5, 7]);
        let mut above = at.clone();
        above.iter_mut().for_each(|v| v[6] = 0.1001);
        assert_eq!(keyframes(&[1.; 8], &above, StopRule::default()), [7]);
        // One step: no keyframe; two: the last.
        assert_eq!(keyframes(&[1.], &[STILL], StopRule::default()), Vec::<usize>::new());
        assert_eq!(keyframes(&[1., 1.], &[MOVING, MOVING], StopRule::default()), [1]);
    }

    #[test]
    fn a_synthetic_pick_and_place_gives_its_four_keyframes() {
        // Reach (moving 0..=5), settle above the object (still 6..=8), close at 9, lift
        // (moving 10..=19), pause (still 20..=21), open at 22, retreat to step 29.
        let open: Vec<f64> = (0..30).map(|i| if (9..22).contains(&i) { 0.0 } else { 1.0 }).collect();
        let still = |i: usize| (6..=8).contains(&i) || (20..=21).contains(&i);
        let mut v = velocities(30, still);
        // Joint velocities with mixed signs, well inside the threshold while still.
        for (i, row) in v.iter_mut().enumerate() {
            if still(i) {
                row[0] = -0.05;
                row[3] = 0.08;
            }
        }
        assert_eq!(keyframes(&open, &v, StopRule::default()), [6, 9, 20, 22, 29]);
        // A stricter threshold loses both pauses.
        assert_eq!(keyframes(&open, &v, StopRule { stop_delta: 0.01, refractory: 4 }), [9, 22, 29]);
    }

    #[test]
    fn demo_augmentation_starts_every_nth_step_until_the_last_keyframe() {
        let starts = augmented_starts(30, &[6, 9, 20, 22, 29], 10);
        assert_eq!(starts, vec![(0, vec![6, 9, 20, 22, 29]), (10, vec![20, 22, 29]), (20, vec![22, 29])]);
        assert_eq!(augmented_starts(30, &[6, 29], 0), vec![(0, vec![6, 29])]);
        assert!(augmented_starts(5, &[], 2).is_empty());
    }
}
