"""STAND-IN for rlbench.backend.observation: the same fields."""

FIELDS = (
    "left_shoulder_rgb", "left_shoulder_depth", "left_shoulder_mask", "left_shoulder_point_cloud",
    "right_shoulder_rgb", "right_shoulder_depth", "right_shoulder_mask", "right_shoulder_point_cloud",
    "overhead_rgb", "overhead_depth", "overhead_mask", "overhead_point_cloud",
    "wrist_rgb", "wrist_depth", "wrist_mask", "wrist_point_cloud",
    "front_rgb", "front_depth", "front_mask", "front_point_cloud",
    "joint_velocities", "joint_positions", "joint_forces", "gripper_open", "gripper_pose",
    "gripper_matrix", "gripper_joint_positions", "gripper_touch_forces", "task_low_dim_state", "misc",
)


class Observation(object):
    def __init__(self, **fields):
        missing = set(FIELDS) - set(fields)
        if missing:
            raise TypeError(f"stand-in Observation: missing {sorted(missing)}")
        for k in FIELDS:
            setattr(self, k, fields.pop(k))
        if fields:
            raise TypeError(f"stand-in Observation: unknown {sorted(fields)}")
