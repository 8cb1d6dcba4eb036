"""ByteTrack's own Kalman filter, evaluated in scalar arithmetic: the tracker's hot loop.

`trackers.ByteTrackTracker` runs a Kalman predict for every track and an update for
every matched one, each frame, each a dozen numpy calls on 8x8 matrices. For a crowd of
20 that was about 70 % of the tracker's time, nearly all of it numpy's per-call
overhead rather than arithmetic. Its default motion model (`XYXYStateEstimator`: the
four box coordinates and their velocities, measured directly) with ByteTrack's noise
(scaled identities) keeps the covariance as four identical 2x2 position/velocity
blocks, one per coordinate. So the filter is eight state numbers and three covariance
numbers, and `ScalarXYXYEstimator` does the same algebra (the same predict, the same
Joseph-form update) on those in plain floats: about 2 us per track and frame instead
of 20, which halves ByteTrack's time per frame.

It plugs into ByteTrack's documented ``state_estimator_class``; the tracker itself is
untouched. What stays with ``trackers``: association, the track life cycle and ids, the
noise tuning, and the choice of F and Q for each step (`KalmanMotionModel.apply`: the
near-nominal band and DWNA scaling over gaps), which the estimator reads from the numpy
filter. It checks that P, R and H, and every F and Q it is handed, have the block form
the scalar algebra assumes; for a track where anything does not (another tracker's
noise, a future ``trackers`` release), it hands the state back to the numpy filter and
that track runs the stock code from then on. The results match the stock filter's to
rounding (about 1e-12 px); ``tests/vision/test_kalman.py`` runs both side by side and
requires identical tracker output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from trackers.utils.state_representations import XYXYStateEstimator

__all__ = ["ScalarXYXYEstimator"]

FloatArray = npt.NDArray[np.float64]
_COORDS = 4  # x1, y1, x2, y2; state index i + 4 is coordinate i's velocity
_ONE_BLOCK = np.eye(_COORDS)
_H = np.eye(_COORDS, 2 * _COORDS)

_STEP_TERMS: dict[bytes, tuple[float, float, float, float] | None] = {}
"""(dt, Q_pp, Q_pv, Q_vv) of each (F, Q) pair seen, or None when not in block form.
Keyed by content: ``trackers`` builds a new F and Q whenever the frame step changes,
which float timestamps do (in the last bit) on about half the frames."""
_STEP_TERMS_MAX = 512


def _block(pp: float, pv: float, vv: float) -> FloatArray:
    """The 8x8 matrix with ``[[pp, pv], [pv, vv]]`` for every coordinate."""
    return np.kron(np.array([[pp, pv], [pv, vv]]), _ONE_BLOCK)


def _block_terms(matrix: FloatArray) -> tuple[float, float, float] | None:
    if matrix.shape != (2 * _COORDS, 2 * _COORDS):
        return None
    pp, pv, vv = float(matrix[0, 0]), float(matrix[0, _COORDS]), float(matrix[_COORDS, _COORDS])
    return (pp, pv, vv) if np.array_equal(matrix, _block(pp, pv, vv)) else None


def _step_terms(f: FloatArray, q: FloatArray) -> tuple[float, float, float, float] | None:
    key = f.tobytes() + q.tobytes()
    if key in _STEP_TERMS:
        return _STEP_TERMS[key]
    terms = None
    noise = _block_terms(q)
    if noise is not None and f.shape == q.shape:
        dt = float(f[0, _COORDS])
        if np.array_equal(f, np.kron(np.array([[1.0, dt], [0.0, 1.0]]), _ONE_BLOCK)):
            terms = (dt, *noise)
    if len(_STEP_TERMS) >= _STEP_TERMS_MAX:
        _STEP_TERMS.clear()
    _STEP_TERMS[key] = terms
    return terms


class ScalarXYXYEstimator(XYXYStateEstimator):
    """`XYXYStateEstimator` with its Kalman algebra done on floats (see the module notes).

    While a track runs the scalar path, the floats hold its state and the numpy filter
    (``kf``) only supplies the step's F and Q; `get_state` and `set_kf_covariances`
    hand the state back first, so anything that asks sees the current values.
    """

    def __init__(self, bbox: npt.NDArray[Any]) -> None:
        super().__init__(bbox)
        # None until the first predict/update: the tracklet sets its noise after this.
        self._scalar: bool | None = None
        self._x: list[float] = []
        self._p = (0.0, 0.0, 0.0)  # the covariance block: pos-pos, pos-vel, vel-vel
        self._r = 0.0
        self._model: tuple[object, object] | None = None  # the (F, Q) _step belongs to
        self._step = (1.0, 0.0, 0.0, 0.0)

    @property
    def scalar(self) -> bool:
        """Whether this track runs on floats (False: the stock numpy filter, or not yet
        stepped)."""
        return bool(self._scalar)

    def predict(self, frame_step: float = 1.0, frame_rate: float | None = None) -> None:
        if not self._running():
            super().predict(frame_step, frame_rate)
            return
        # XYXY velocities are unconstrained: its clamp_velocity is a no-op, so skip it.
        kf = self.kf
        self.motion.apply(kf, frame_step, frame_rate)  # trackers picks F and Q
        f, q = kf.transition_mtx, kf.process_noise
        model = self._model
        if model is None or model[0] is not f or model[1] is not q:
            step = _step_terms(f, q)
            if step is None:
                self._hand_back(scalar=False)
                super().predict(frame_step, frame_rate)
                return
            self._model, self._step = (f, q), step
        dt, q_pp, q_pv, q_vv = self._step
        x = self._x
        for i in range(_COORDS):
            x[i] += dt * x[i + _COORDS]
        pp, pv, vv = self._p
        pv_next = pv + dt * vv
        self._p = (pp + dt * pv + dt * pv_next + q_pp, pv_next + q_pv, vv + q_vv)

    def update(self, bbox: npt.NDArray[Any] | None) -> None:
        if bbox is None:  # no observation: the state stays as predicted
            if not self._scalar:
                super().update(bbox)
            return
        if not self._running():
            super().update(bbox)
            return
        z = np.asarray(bbox, dtype=np.float64).reshape(_COORDS).tolist()
        pp, pv, vv = self._p
        r = self._r
        s = pp + r  # innovation variance, the same for every coordinate
        k_p, k_v = pp / s, pv / s  # Kalman gain for a coordinate and its velocity
        x = self._x
        for i in range(_COORDS):
            residual = z[i] - x[i]
            x[i] += k_p * residual
            x[i + _COORDS] += k_v * residual
        # Joseph form, as trackers' KalmanFilter: (I-KH) P (I-KH)^T + K R K^T per block.
        keep = 1.0 - k_p
        cross = pv - k_v * pp
        self._p = (
            keep * keep * pp + r * k_p * k_p,
            keep * cross + r * k_p * k_v,
            vv - k_v * pv - k_v * cross + r * k_v * k_v,
        )

    def state_to_bbox(self) -> npt.NDArray[np.float64]:
        if self._scalar:
            return np.array(self._x[:_COORDS], dtype=np.float64)
        return np.asarray(super().state_to_bbox(), dtype=np.float64)

    def get_state(self) -> dict[str, Any]:
        self._hand_back(scalar=None)
        state: dict[str, Any] = super().get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self._hand_back(scalar=None)
        super().set_state(state)

    def set_kf_covariances(
        self,
        measurement_noise: npt.NDArray[Any] | None = None,
        process_noise: npt.NDArray[Any] | None = None,
        state_covariance: npt.NDArray[Any] | None = None,
    ) -> None:
        self._hand_back(scalar=None)
        super().set_kf_covariances(measurement_noise, process_noise, state_covariance)

    def _running(self) -> bool:
        """Whether this track runs the scalar path; the first call checks that it can."""
        if self._scalar is not None:
            return self._scalar
        kf = self.kf
        p = _block_terms(kf.state_covariance)
        r = float(kf.measurement_noise[0, 0])
        if (
            p is None
            or kf.state.shape != (2 * _COORDS, 1)
            or not np.array_equal(kf.measurement_noise, r * _ONE_BLOCK)
            or not np.array_equal(kf.observation_mtx, _H)
        ):
            self._scalar = False
            return False
        self._x, self._p, self._r = kf.state.ravel().tolist(), p, r
        self._model = None
        self._scalar = True
        return True

    def _hand_back(self, *, scalar: bool | None) -> None:
        """Write the scalar state into the numpy filter; ``scalar`` is what comes next
        (None: check again on the next step, False: the stock filter from now on)."""
        if self._scalar:
            self.kf.state = np.array(self._x, dtype=np.float64).reshape(2 * _COORDS, 1)
            self.kf.state_covariance = _block(*self._p)
        self._scalar = scalar
