"""`gssplat_node`: synced camera, pose and depth in; semantic renders and Gaussian clouds out.

Usage:
    gssplat_node --ros-args --params-file config/gssplat.yaml -r image:=/camera/image_raw
    ros2 launch gssplat_ros gssplat.launch.py                      # autostart:=true (configure + activate)
    ros2 launch gssplat_ros gssplat.launch.py autostart:=false     # managed: then
    ros2 lifecycle set /gssplat configure && ros2 lifecycle set /gssplat activate

A lifecycle node (REP 2005 / rclpy.lifecycle): parameters are declared in __init__; configure validates them,
loads the model and warms up; activate creates the subscriptions and starts the worker (the output
publishers are lifecycle publishers, silent while inactive); deactivate stops both; cleanup releases the
model (and CUDA memory); shutdown saves the map when `save_map_on_shutdown`.

The node only wires: it converts messages (conversions.py), feeds the core Pipeline, and publishes.
Subscription callbacks never run the network: they hand work to one worker thread through
latest-wins slots, so a slow model drops stale work instead of queueing it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Optional

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from gssplat_ros.cameras import scale_K
from gssplat_ros.map_saver import MapSaver
from gssplat_ros.pipeline import Pipeline, RenderResult
from gssplat_ros.ros import conversions as conv
from gssplat_ros.ros import labels
from gssplat_ros.ros.health import Health
from gssplat_ros.ros.inputs import InputStage, check_inputs
from gssplat_ros.ros.params import (
    NodeConfig,
    ParameterError,
    apply_parameter_changes,
    changed_settings,
    declare_parameters,
    read_config,
)
from gssplat_ros.ros.tf import TransformException, transform_to_matrix
from gssplat_ros.window import Frame, FrameError


@dataclass
class RenderJob:
    stamp_ns: int
    world_from_cam: np.ndarray  # [4, 4]
    received: float  # time.monotonic() when its input arrived
    new_window: bool  # predict first (the window changed)
    frame_id: str = ""  # the optical frame whose pose the render uses: the renders' header.frame_id


class LatencyStats:
    """Rolling per-stage latencies (ms), reported as p50/p95."""

    def __init__(self, size: int = 300):
        self._values: dict[str, deque] = {}
        self._lock = threading.Lock()
        self.size = size

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._values.setdefault(stage, deque(maxlen=self.size)).append(ms)

    def percentiles(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            return {k: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for k, v in self._values.items() if v}


LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
OUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class GssplatNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("gssplat", **kwargs)
        declare_parameters(self)  # a wrong type or out-of-range value raises here (ParameterError)
        self.cfg: Optional[NodeConfig] = None  # read on configure
        self.pipeline: Optional[Pipeline] = None
        self.configure_error: Optional[BaseException] = None  # why the last configure failed
        self.log_configure_failure = True  # activate_at_start reports it itself, as one line
        self.dropped: Counter = Counter()
        self.counts: Counter = Counter()
        self.latency = LatencyStats()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._active_subscriptions: list = []
        self._configured_entities: list = []  # (destroy function, entity) made on configure
        self.health = Health()  # replaced on configure, with the configured windows
        self._reset_state()

    def _reset_state(self) -> None:
        self._last_warn: dict[str, float] = {}
        self._last_stamp_ns: Optional[int] = None
        self._last_K: Optional[np.ndarray] = None  # model-size intrinsics of the latest frame
        self._prediction = None
        self._pending: Optional[RenderJob] = None  # latest wins
        self._pose_requests: deque = deque(maxlen=4)

    # ----------------------------------------------------------------- lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate the parameters, load the model, warm up; create the publishers, services and timers."""
        self.configure_error = None
        try:
            self.cfg = cfg = read_config(self)
            check_inputs(cfg)  # before the model loads: TF-dependent parameters on an install without TF
            self.pipeline = Pipeline(cfg.pipeline)
            warm_s = self.pipeline.warm_up()
        except Exception as exc:  # a bad parameter, checkpoint, device, runtime or renderer: FAILURE, with why
            self.configure_error = exc
            self.pipeline = None
            if self.log_configure_failure:
                self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._reset_state()
        self.palette = np.asarray(cfg.palette, dtype=np.uint8).reshape(-1, 3)
        # The checkpoint's display names; one without names still gets one per class the model predicts.
        self.class_names = tuple(self.pipeline.class_names) or tuple(
            f"class_{i}" for i in range(self.pipeline.num_classes))
        self.class_colors = labels.class_colors(len(self.class_names), self.palette)
        if len(self.palette) < len(self.class_names):
            self.get_logger().warning(f"palette has {len(self.palette)} colours for {len(self.class_names)} "
                                      "classes: the others are drawn black")
        self.health = Health(cfg.health_window_s, cfg.stale_input_s, cfg.no_render_error_s)
        self.map_saver = MapSaver(cfg.map_save_dir)
        made = self._configured_entities

        self.pub_image = self.create_lifecycle_publisher(Image, "~/render/image", OUT_QOS)
        self.pub_semantic = self.create_lifecycle_publisher(Image, "~/render/semantic", OUT_QOS)
        self.pub_semantic_color = self.create_lifecycle_publisher(Image, "~/render/semantic_color", OUT_QOS)
        self.pub_depth = self.create_lifecycle_publisher(Image, "~/render/depth", OUT_QOS)
        self.pub_info = self.create_lifecycle_publisher(CameraInfo, "~/render/camera_info", OUT_QOS)
        self.pub_cloud = self.create_lifecycle_publisher(PointCloud2, "~/gaussians", OUT_QOS)
        self.pub_semantic_cloud = self.create_lifecycle_publisher(PointCloud2, "~/gaussians/semantic", OUT_QOS)
        self.pub_map = self.create_lifecycle_publisher(PointCloud2, "~/map/gaussians", OUT_QOS)
        # Latched (transient local): a viewer or planner that starts later still gets the classes once.
        self.pub_labels = self.create_lifecycle_publisher(String, "~/labels", LATCHED)
        self.pub_legend = self.create_lifecycle_publisher(MarkerArray, "~/labels/legend", LATCHED)
        made += [(self.destroy_lifecycle_publisher, p) for p in (
            self.pub_image, self.pub_semantic, self.pub_semantic_color, self.pub_depth, self.pub_info,
            self.pub_cloud, self.pub_semantic_cloud, self.pub_map, self.pub_labels, self.pub_legend)]
        # Diagnostics also while inactive: a monitor sees a configured node that gets no input.
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", OUT_QOS)
        timers = MutuallyExclusiveCallbackGroup()
        made += [(self.destroy_publisher, self.pub_diag),
                 (self.destroy_timer, self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics,
                                                        callback_group=timers))]
        # A service, not a topic: the caller learns whether the map was saved, and where (map_saver.py says
        # which files a request may write). Its own group: it awaits the save thread while inputs flow on.
        self._save_done = self.create_guard_condition(lambda: None)  # wakes the executor when a save ends
        self.map_saver.add_done_callback(self._save_done.trigger)
        made += [(self.destroy_guard_condition, self._save_done),
                 (self.destroy_service, self.create_service(Trigger, "~/save_map", self._on_save_map,
                                                            callback_group=MutuallyExclusiveCallbackGroup()))]
        # Dynamic parameters apply to the loaded pipeline; unconfigured, a set value is validated on configure.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        made.append((self.remove_on_set_parameters_callback, self._on_set_parameters))
        pc = cfg.pipeline
        self.get_logger().info(
            f"configured: V={pc.window_size} model {pc.model_width}x{pc.model_height}, depth {pc.depth_mode}, "
            f"runtime {pc.runtime}{'' if pc.precision == 'auto' else ' ' + pc.precision} on {self.pipeline.device}, "
            f"{len(self.class_names)} classes, warm-up {warm_s:.1f} s"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, subscribe to the inputs, start the worker."""
        cfg = self.cfg
        result = super().on_activate(state)  # enables the lifecycle publishers
        before = set(self.subscriptions)
        out_qos = OUT_QOS
        inputs = MutuallyExclusiveCallbackGroup()
        # Subscriptions, sync, decoding, camera models, poses (topics or TF), depth registration: inputs.py.
        # Every callback there is guarded: an exception is counted (internal_error), never raised into the
        # executor, which would stop the node.
        self.inputs = InputStage(self, cfg, self._on_frame, self._drop, self._note_input, callback_group=inputs)
        self.create_subscription(PoseStamped, "~/render_pose", self._guarded(self._on_render_pose), out_qos,
                                 callback_group=inputs)
        self._active_subscriptions = [sub for sub in self.subscriptions if sub not in before]
        self._map_timer = None
        if cfg.pipeline.fuse_map:
            self._map_timer = self.create_timer(cfg.map_publish_period_s, self._publish_map,
                                                callback_group=MutuallyExclusiveCallbackGroup())
        self.pub_labels.publish(labels.labels_msg(self.class_names, self.class_colors))
        self.pub_legend.publish(labels.legend_markers(
            self.class_names, self.class_colors, Header(stamp=self.get_clock().now().to_msg(), frame_id=cfg.world_frame)))
        self._stop.clear()
        self._worker = threading.Thread(target=self._work_loop, name="gssplat-inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"active: pose from {cfg.pose_source}, image {cfg.image_transport}, depth "
                               f"{'on' if cfg.use_depth else 'off'}, QoS {cfg.qos_profile}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the inputs and the worker; the publishers go silent. The window and the map are kept."""
        self._stop_activity()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model (and CUDA memory) and everything configure made."""
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """From any state: stop, save the map when configured to, release."""
        self._finish()
        return super().on_shutdown(state)

    def _finish(self) -> None:
        self._stop_activity()
        if self.cfg is not None and self.pipeline is not None and self.cfg.pipeline.fuse_map \
                and self.cfg.save_map_on_shutdown:
            self.save_map()
        self._release()

    def _stop_activity(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if getattr(self, "inputs", None) is not None:
            self.inputs.close()
            self.inputs = None
        for sub in self._active_subscriptions:
            self.destroy_subscription(sub)
        self._active_subscriptions = []
        if getattr(self, "_map_timer", None) is not None:
            self.destroy_timer(self._map_timer)
            self._map_timer = None

    def _release(self) -> None:
        for destroy, entity in reversed(self._configured_entities):
            destroy(entity)
        self._configured_entities.clear()
        device = self.pipeline.device if self.pipeline is not None else None
        with self._lock:
            self.pipeline, self._prediction, self._pending = None, None, None
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()  # the model's memory goes back to other processes

    def shutdown(self) -> None:
        """The shutdown transition from whichever state the node is in (idempotent)."""
        if self._state_machine.current_state[1] not in ("unconfigured", "inactive", "active"):
            return
        if self.context.ok():
            try:
                self.trigger_shutdown()
                return
            except _rclpy.RCLError:  # SIGINT invalidated the context between the check and the transition
                pass
        self._finish()  # without a context the state machine cannot announce a transition

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Apply dynamic parameters at once; refuse read-only ones and invalid values with the reason."""
        try:
            cfg = apply_parameter_changes(self.cfg, {p.name: p.value for p in params})
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.pipeline.apply_settings(**changed_settings(self.cfg, cfg))
        self.cfg = cfg
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------- input callbacks (never block)
    def _guarded(self, callback):
        def guarded(*args):
            try:
                return callback(*args)
            except Exception as exc:  # a malformed message or a bug must never take the executor down
                self._drop("internal_error", f"{getattr(callback, '__name__', 'callback')}: {type(exc).__name__}: {exc}")
        return guarded

    def _note_input(self, kind: str) -> None:
        self.counts["synced" if kind == "frame" else kind + "_in"] += 1
        self.health.note(kind)

    def _drop(self, reason: str, message: str) -> None:
        self.dropped[reason] += 1
        self.health.note_drop(reason)
        now = time.monotonic()
        if now - self._last_warn.get(reason, -1e9) >= self.cfg.warn_throttle_s:
            self._last_warn[reason] = now
            self.get_logger().warn(f"dropping frame ({reason}): {message} [{self.dropped[reason]} so far]")

    def _on_frame(self, frame: Frame, stamp_ns: int, header) -> None:
        """A synced, converted frame from the input stage: into the window, and a render job for the worker."""
        received = time.monotonic()
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            # Time went backwards (a looped bag, a restarted driver): start a fresh window. A pending job
            # from before would predict on the new, one-keyframe window: it goes too.
            self.get_logger().warn("input time jumped backwards: resetting the keyframe window")
            self.dropped["time_jump_back"] += 1
            with self._lock:
                self.pipeline.reset()
                self._pending = None
        elif stamp_ns == self._last_stamp_ns:
            self._drop("duplicate_stamp", f"stamp {stamp_ns} seen already")
            return
        self._last_stamp_ns = stamp_ns
        try:
            with self._lock:  # the worker snapshots the window under the same lock
                is_keyframe = self.pipeline.add_frame(frame)
        except FrameError as exc:
            self._drop(exc.reason, str(exc))
            return
        h, w = frame.image.shape[:2]
        K = torch.as_tensor(frame.K, dtype=torch.float64)
        self._last_K = scale_K(K, self.render_size[0] / w, self.render_size[1] / h).numpy()
        self.counts["keyframes"] += int(is_keyframe)
        if is_keyframe:
            self.health.note("keyframe")
        self.latency.add("convert", (time.monotonic() - received) * 1e3)
        with self._lock:
            job = RenderJob(stamp_ns, frame.world_from_cam, received, is_keyframe and self.pipeline.window_ready(),
                            frame_id=header.frame_id)
            if self._pending is not None:
                self.counts["superseded"] += 1
                job.new_window = job.new_window or self._pending.new_window  # keep the pending prediction
            self._pending = job
        self._wake.set()

    def _on_render_pose(self, msg: PoseStamped) -> None:
        """Render the optical frame at a requested pose. It must be in world_frame (an empty frame_id means
        world_frame), or transformable into it through the TF buffer the input side provides."""
        try:
            world_from_cam = conv.pose_msg_to_matrix(msg.pose)
        except conv.ConversionError as exc:
            self._drop("bad_render_pose", str(exc))
            return
        frame = msg.header.frame_id or self.cfg.world_frame
        if frame != self.cfg.world_frame:
            world_from_frame = self._world_from_frame(frame, msg.header.stamp)
            if world_from_frame is None:
                self._drop("render_pose_frame", f"~/render_pose in '{frame}', not world_frame "
                                                f"'{self.cfg.world_frame}', and no TF to transform it")
                return
            world_from_cam = world_from_frame @ world_from_cam
        self._pose_requests.append(RenderJob(conv.stamp_to_ns(msg.header.stamp), world_from_cam,
                                             time.monotonic(), False, frame_id=self.cfg.render_pose_frame))
        self._wake.set()

    def _world_from_frame(self, frame: str, stamp) -> Optional[np.ndarray]:
        """world_frame <- frame at stamp ([4, 4]) from the input side's TF buffer (`self.inputs.tf_buffer`,
        tf2_ros.Buffer's interface), or None when there is no buffer or no transform."""
        buffer = getattr(getattr(self, "inputs", None), "tf_buffer", None)
        if buffer is None:
            return None

        try:
            return transform_to_matrix(buffer.lookup_transform(self.cfg.world_frame, frame, stamp).transform)
        except TransformException:
            return None

    async def _on_save_map(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Save to map_save_dir/map_file_name off the executor thread; answer when written or refused."""
        try:
            job = self.map_saver.start(self._map_gaussians(), self.cfg.map_file_name)
            while not job.done.is_set():  # woken by the saver's guard condition; other callbacks run meanwhile
                await _yield_to_executor()
            response.success, response.message = job.outcome
        except Exception as exc:  # never into the executor
            response.success, response.message = False, f"internal error: {type(exc).__name__}: {exc}"
            self._drop("internal_error", f"save_map: {response.message}")
        self._log_save(response.success, response.message)
        return response

    def _log_save(self, ok: bool, message: str) -> None:
        if ok:  # two call sites: rclpy's logger refuses a second severity from one line
            self.get_logger().info(f"save_map: {message}")
        else:
            self.get_logger().warn(f"save_map: {message}")

    def _map_gaussians(self):
        return self.pipeline.map.gaussians() if self.pipeline.map is not None else None

    # ----------------------------------------------------------------- worker thread
    @property
    def render_size(self) -> tuple[int, int]:
        pc = self.cfg.pipeline
        return (self.cfg.render_width or pc.model_width, self.cfg.render_height or pc.model_height)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            while not self._stop.is_set():
                with self._lock:
                    job, self._pending = self._pending, None
                if job is None and self._pose_requests:
                    job = self._pose_requests.popleft()
                if job is None:
                    break
                try:
                    self._process(job)
                except Exception as exc:  # never let one window kill the node
                    if not self.context.ok():  # shut down (Ctrl-C) mid-publish: not a dropped frame
                        return
                    self._drop(getattr(exc, "reason", "inference_error"), f"{type(exc).__name__}: {exc}")

    def _process(self, job: RenderJob) -> None:
        if job.new_window:
            with self._lock:
                window = self.pipeline.snapshot()
            if len(window) < 2:  # reset (time jumped back) after this job was queued: wait for a new window
                job.new_window = False
                self.counts["stale_windows_skipped"] += 1
            else:
                t0 = time.monotonic()
                prediction = self.pipeline.predict(window)
                self.latency.add("predict", (time.monotonic() - t0) * 1e3)
                self._prediction = prediction
                self.counts["predictions"] += 1
                self.health.note("prediction")
        if self._prediction is not None and self._last_K is not None:
            t0 = time.monotonic()
            w, h = self.render_size
            # Lazy like image_transport: the semantic pass runs only while someone listens for it.
            semantic = self.pub_semantic.get_subscription_count() + self.pub_semantic_color.get_subscription_count() > 0
            result = self.pipeline.render(self._prediction, self._last_K, job.world_from_cam, w, h, semantic)
            self.latency.add("render", (time.monotonic() - t0) * 1e3)
            self._publish_render(result, job, semantic)
            self.latency.add("total", (time.monotonic() - job.received) * 1e3)
        if job.new_window and self.cfg.publish_cloud:  # after the renders: building the cloud is off their latency path
            header = Header(stamp=conv.ns_to_stamp(job.stamp_ns), frame_id=self.cfg.world_frame)
            gaussians = self.pipeline.cloud(self._prediction)
            self.pub_cloud.publish(conv.gaussians_to_cloud_msg(gaussians, header))
            if self.pub_semantic_cloud.get_subscription_count() > 0:  # lazy: only while someone listens
                self.pub_semantic_cloud.publish(labels.semantic_cloud_msg(gaussians, self.class_colors, header))

    def _publish_render(self, r: RenderResult, job: RenderJob, semantic: bool = True) -> None:
        # The optical frame whose pose this render used, so rviz2's Camera display and Foxglove can place it.
        header = Header(stamp=conv.ns_to_stamp(job.stamp_ns), frame_id=job.frame_id)
        self.pub_image.publish(conv.numpy_to_image(r.rgb, header, "rgb8"))
        if semantic:
            self.pub_semantic.publish(conv.numpy_to_image(r.labels, header, "mono8"))
            self.pub_semantic_color.publish(
                conv.numpy_to_image(conv.colorize_labels(r.labels, self.palette), header, "rgb8"))
        self.pub_depth.publish(conv.numpy_to_image(r.depth.astype(np.float32), header, "32FC1"))
        w, h = self.render_size
        self.pub_info.publish(conv.camera_info_msg(self._last_K, w, h, header))
        self.counts["renders"] += 1
        self.health.note("render")
        if not semantic:  # counted beside "renders", so stats() sees the two move together
            self.counts["semantic_skipped"] += 1

    # ----------------------------------------------------------------- map, diagnostics
    def _publish_map(self) -> None:
        g = self.pipeline.map.gaussians() if self.pipeline.map is not None else None
        if g is not None:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.cfg.world_frame)
            self.pub_map.publish(conv.gaussians_to_cloud_msg(g, header))

    def save_map(self) -> tuple[bool, str]:
        """Save the fused map to map_save_dir/map_file_name and wait for it (shutdown)."""
        ok, message = self.map_saver.start(self._map_gaussians(), self.cfg.map_file_name).wait()
        self._log_save(ok, message)
        return ok, message

    def stats(self) -> dict:
        lat = self.latency.percentiles()
        report = self.health.report(self.pipeline is not None and self.pipeline.window_ready())
        level, message = report.level, report.message
        world_check = getattr(getattr(self, "inputs", None), "world_check_message", None)
        if world_check and level == DiagnosticStatus.OK[0]:
            # the semantic model's z-up / floor-height assumption looks violated: outputs are suspect
            level, message = DiagnosticStatus.WARN[0], f"world convention: {world_check}"
        return {
            "level": level,
            "message": message,
            "world_check": world_check or "ok",
            "frames_in": self.counts["synced"],
            # over the last health_window_s seconds, not lifetime means
            "image_rate_hz": report.rates_hz["image"],
            "pose_rate_hz": report.rates_hz["pose"],
            "frame_rate_hz": report.rates_hz["frame"],
            "render_rate_hz": report.rates_hz["render"],
            "recent_drop_fraction": report.drop_fraction,
            "keyframes": self.counts["keyframes"],
            "predictions": self.counts["predictions"],
            "renders_out": self.counts["renders"],
            "semantic_skipped": self.counts["semantic_skipped"],  # renders without a semantic subscriber
            "superseded": self.counts["superseded"],
            "stale_windows_skipped": self.counts["stale_windows_skipped"],
            "dropped": dict(self.dropped),
            "recent_drops": report.drops,
            "latency_ms": {k: {"p50": round(p50, 1), "p95": round(p95, 1)} for k, (p50, p95) in lat.items()},
        }

    def _publish_diagnostics(self) -> None:
        s = self.stats()
        level, message = s.pop("level"), s.pop("message")
        values = [KeyValue(key=k, value=str(v)) for k, v in s.items() if not isinstance(v, dict)]
        values += [KeyValue(key=f"dropped/{k}", value=str(v)) for k, v in s["dropped"].items()]
        values += [KeyValue(key=f"recent_dropped/{k}", value=str(v)) for k, v in s["recent_drops"].items()]
        for stage, p in s["latency_ms"].items():
            values += [KeyValue(key=f"latency_{stage}_p50_ms", value=str(p["p50"])),
                       KeyValue(key=f"latency_{stage}_p95_ms", value=str(p["p95"]))]
        status = DiagnosticStatus(level=bytes([level]), name=f"{self.get_fully_qualified_name()}: pipeline",
                                  message=message, hardware_id="gssplat", values=values)
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


async def _yield_to_executor() -> None:
    """Give the executor a turn (an awaitable that yields once, as rclpy's Future does while pending)."""
    await _Yield()


class _Yield:
    def __await__(self):
        yield


class StartError(RuntimeError):
    """The node could not be configured or activated at start; the message is the one-line reason."""


def activate_at_start(node: GssplatNode) -> None:
    """Configure and activate now (autostart), raising configure's own exception when it fails."""
    node.log_configure_failure = False  # the caller reports it, as one line
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise node.configure_error or StartError("configure failed")
    finally:
        node.log_configure_failure = True
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise StartError("activate failed")


def main(args: Optional[list[str]] = None) -> int:
    rclpy.init(args=args)
    node = None
    started = False
    try:
        node = GssplatNode()
        if node.get_parameter("autostart").value:
            activate_at_start(node)
        else:
            node.get_logger().info("managed: waiting for `ros2 lifecycle set <node> configure` and `activate`")
        started = True
        # One executor thread: callbacks only convert and enqueue, inference runs on the node's worker.
        # (Measured on 2 cores: a multi-threaded executor's threads fight the worker for the GIL and
        # tripled render latency, with p95 in the seconds.)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except RuntimeError:
            # SIGINT shuts the context down from the signal handler; a take already under way then fails
            # in rclpy's bindings (seen on Jazzy: "Unable to convert call argument"). That is a clean stop.
            if rclpy.ok():
                raise
    except ParameterError as exc:
        print(f"gssplat_node: invalid parameter: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # start-up: checkpoint, device, runtime, renderer: one line, not a traceback
        if started:  # a failure while running keeps its traceback
            raise
        print(f"gssplat_node: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.shutdown()
            if started:
                print("GSSPLAT_STATS " + json.dumps(node.stats()), flush=True)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
