"""STAND-IN scene: the robot's scripted state and the observations RLBench's Scene would build
from it, honouring the ObservationConfig (a field that is off is None, as in RLBench).

Encodings the tests read: every rgb pixel is (task CODE, variation, steps since reset); a
camera's point cloud is the object placement (drawn from numpy's global generator at reset, as
RLBench's spawn boundaries draw) plus the camera's index in CAMERAS; its intrinsics have focal
length 100 + that index and its extrinsics translate x by it."""

import numpy as np

from rlbench.backend.observation import FIELDS, Observation

CAMERAS = ("front", "left_shoulder", "right_shoulder", "overhead", "wrist")


class Robot(object):
    def __init__(self):
        self.pose = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
        self.gripper_open = 1.0
        self.joint_velocities = np.zeros(7)
        self.steps = 0


class Scene(object):
    def __init__(self, obs_config):
        self.obs_config = obs_config
        self.robot = Robot()
        self.task = None
        self.variation = 0
        self.placement = np.zeros(3)

    def reset(self, variation):
        self.variation = variation
        self.robot.pose = np.array([0.1 * variation, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
        self.robot.gripper_open = 1.0
        self.robot.joint_velocities = np.zeros(7)
        self.robot.steps = 0
        self.placement = np.random.uniform(-0.1, 0.1, size=3)

    def get_observation(self):
        cfg, robot = self.obs_config, self.robot
        f = {k: None for k in FIELDS}
        misc = {"variation_index": self.variation}
        for i, cam in enumerate(CAMERAS):
            cc = getattr(cfg, f"{cam}_camera")
            w, h = cc.image_size
            if cc.rgb:
                rgb = np.zeros((h, w, 3), dtype=np.uint8)
                rgb[..., 0], rgb[..., 1], rgb[..., 2] = self.task.CODE, self.variation, robot.steps
                f[f"{cam}_rgb"] = rgb
            if cc.depth:
                f[f"{cam}_depth"] = np.ones((h, w), dtype=np.float32)
            if cc.mask:
                f[f"{cam}_mask"] = np.zeros((h, w), dtype=np.int64)
            if cc.point_cloud:
                f[f"{cam}_point_cloud"] = np.broadcast_to(self.placement + i, (h, w, 3)).astype(np.float64)
            if cc.rgb or cc.depth or cc.point_cloud or cc.mask:
                ext = np.eye(4)
                ext[0, 3] = i
                misc[f"{cam}_camera_extrinsics"] = ext
                misc[f"{cam}_camera_intrinsics"] = np.array([[100.0 + i, 0, w / 2], [0, 100.0 + i, h / 2], [0, 0, 1]])
                misc[f"{cam}_camera_near"], misc[f"{cam}_camera_far"] = 0.01, 4.5
        if cfg.joint_velocities:
            f["joint_velocities"] = np.array(robot.joint_velocities)
        if cfg.joint_positions:
            f["joint_positions"] = np.zeros(7)
        if cfg.joint_forces:
            f["joint_forces"] = np.zeros(7)
        if cfg.gripper_open:
            f["gripper_open"] = robot.gripper_open
        if cfg.gripper_pose:
            f["gripper_pose"] = np.array(robot.pose)
        if cfg.gripper_matrix:
            f["gripper_matrix"] = np.eye(4)
        if cfg.gripper_joint_positions:
            # Open fingers read slightly outside [0, 0.04], as the real ones can.
            f["gripper_joint_positions"] = np.array([0.05, -0.01]) if robot.gripper_open > 0.5 else np.zeros(2)
        f["misc"] = misc
        return Observation(**f)
