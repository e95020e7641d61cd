//! RLBench's tasks by file name (`rlbench/tasks/<name>.py`, whose class is the CamelCase name).
//!
//! A family's task list is part of the plugin's descriptor, which the host reads before any
//! config exists, so it is fixed per build: the study's 11 tasks first (ids 0..=10, in the
//! study's order), then the other 95 task files of RLBench's `rlbench/tasks/` (GitHub
//! stepjam/RLBench, master at 02720bba, version 1.2.0), alphabetically. Ids only ever grow by
//! appending. The server checks at start-up that each requested task exists in the RLBench it
//! imports; a task written outside RLBench's repository is named by adding its file name at the
//! end of [`TASKS`].

/// The family's name; its tasks are [`TASKS`], in this order.
pub const FAMILY: &str = "rlbench";

/// How many of [`TASKS`] are the study's (ids 0..=10, C2F-ARM's meta-RL study).
pub const STUDY_TASKS: usize = 11;

/// Every task: task `i` is `TASKS[i]`.
pub const TASKS: [&str; 106] = [
    // The study's 11.
    "push_button",
    "take_lid_off_saucepan",
    "lamp_on",
    "pick_up_cup",
    "pick_and_lift",
    "phone_on_base",
    "stack_wine",
    "open_door",
    "take_usb_out_of_computer",
    "put_rubbish_in_bin",
    "reach_target",
    // The rest of rlbench/tasks/, alphabetically.
    "basketball_in_hoop",
    "beat_the_buzz",
    "block_pyramid",
    "change_channel",
    "change_clock",
    "close_box",
    "close_door",
    "close_drawer",
    "close_fridge",
    "close_grill",
    "close_jar",
    "close_laptop_lid",
    "close_microwave",
    "empty_container",
    "empty_dishwasher",
    "get_ice_from_fridge",
    "hang_frame_on_hanger",
    "hit_ball_with_queue",
    "hockey",
    "insert_onto_square_peg",
    "insert_usb_in_computer",
    "lamp_off",
    "lift_numbered_block",
    "light_bulb_in",
    "light_bulb_out",
    "meat_off_grill",
    "meat_on_grill",
    "move_hanger",
    "open_box",
    "open_drawer",
    "open_fridge",
    "open_grill",
    "open_jar",
    "open_microwave",
    "open_oven",
    "open_washing_machine",
    "open_window",
    "open_wine_bottle",
    "pick_and_lift_small",
    "place_cups",
    "place_hanger_on_rack",
    "place_shape_in_shape_sorter",
    "play_jenga",
    "plug_charger_in_power_supply",
    "pour_from_cup_to_cup",
    "press_switch",
    "push_buttons",
    "put_all_groceries_in_cupboard",
    "put_books_on_bookshelf",
    "put_bottle_in_fridge",
    "put_groceries_in_cupboard",
    "put_item_in_drawer",
    "put_knife_in_knife_block",
    "put_knife_on_chopping_board",
    "put_money_in_safe",
    "put_plate_in_colored_dish_rack",
    "put_shoes_in_box",
    "put_toilet_roll_on_stand",
    "put_tray_in_oven",
    "put_umbrella_in_umbrella_stand",
    "reach_and_drag",
    "remove_cups",
    "scoop_with_spatula",
    "screw_nail",
    "set_the_table",
    "setup_checkers",
    "setup_chess",
    "slide_block_to_target",
    "slide_cabinet_open",
    "slide_cabinet_open_and_place_cups",
    "solve_puzzle",
    "stack_blocks",
    "stack_chairs",
    "stack_cups",
    "straighten_rope",
    "sweep_to_dustpan",
    "take_cup_out_from_cabinet",
    "take_frame_off_hanger",
    "take_item_out_of_drawer",
    "take_money_out_safe",
    "take_off_weighing_scales",
    "take_plate_off_colored_dish_rack",
    "take_shoes_out_of_box",
    "take_toilet_roll_off_stand",
    "take_tray_out_of_oven",
    "take_umbrella_out_of_umbrella_stand",
    "toilet_seat_down",
    "toilet_seat_up",
    "turn_oven_on",
    "turn_tap",
    "tv_on",
    "unplug_charger",
    "water_plants",
    "weighing_scales",
    "wipe_desk",
];

/// The named sets: `study-11`.
pub fn sets() -> Vec<(&'static str, &'static str, Vec<u64>)> {
    let study = (0..STUDY_TASKS as u64).collect();
    vec![("study-11", "the meta-RL study's 11 RLBench tasks (C2F-ARM)", study)]
}

/// The id of task `name`.
pub fn index(name: &str) -> Option<u64> {
    TASKS.iter().position(|t| *t == name).map(|i| i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_study_comes_first_and_no_task_is_listed_twice() {
        let study = ["push_button", "take_lid_off_saucepan", "lamp_on", "pick_up_cup", "pick_and_lift", "phone_on_base", "stack_wine", "open_door", "take_usb_out_of_computer", "put_rubbish_in_bin", "reach_target"];
        assert_eq!(&TASKS[..STUDY_TASKS], &study);
        let mut sorted = TASKS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), TASKS.len());
        let rest = &TASKS[11..];
        assert!(rest.windows(2).all(|w| w[0] < w[1]), "the rest is alphabetical");
        assert_eq!(sets()[0].2, (0..11).collect::<Vec<u64>>());
        assert_eq!(index("reach_target"), Some(10));
        assert_eq!(index("open_drawer"), Some(40));
    }
}
