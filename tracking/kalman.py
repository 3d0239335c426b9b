"""Constant-velocity Kalman filter for a point target (filterpy), state (x, y, vx, vy), units px and frames."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

_H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])


def make_filter(x: float, y: float, measurement_std: float, init_velocity_std: float) -> KalmanFilter:
    """A filter started at (x, y) with zero velocity and `init_velocity_std` velocity uncertainty."""
    kf = KalmanFilter(dim_x=4, dim_z=2)
    kf.x = np.array([x, y, 0.0, 0.0])
    kf.H = _H.copy()
    kf.R = np.eye(2) * measurement_std**2
    kf.P = np.diag([measurement_std**2, measurement_std**2, init_velocity_std**2, init_velocity_std**2])
    return kf


@lru_cache(maxsize=64)
def _transition(dt: float, process_std: float) -> tuple[np.ndarray, np.ndarray]:
    F = np.array([[1.0, 0.0, dt, 0.0], [0.0, 1.0, 0.0, dt], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    # block_size=2 with order_by_dim=False gives the (x, y, vx, vy) ordering
    Q = Q_discrete_white_noise(dim=2, dt=dt, var=process_std**2, block_size=2, order_by_dim=False)
    F.flags.writeable = False
    Q.flags.writeable = False
    return F, Q


def predict(kf: KalmanFilter, dt: float, process_std: float) -> None:
    """Advance the filter by `dt` frames under white-noise acceleration of std `process_std`."""
    F, Q = _transition(float(dt), float(process_std))
    kf.predict(F=F, Q=Q)


def gate_distances(filters: list[KalmanFilter], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared Mahalanobis distances (T, M) of measurements `z` (M, 2) to each filter's predicted position,
    and ln|S| (T,) of each innovation covariance S = H P H' + R."""
    pos = np.array([kf.x[:2] for kf in filters])
    S = np.array([kf.P[:2, :2] + kf.R for kf in filters])  # H selects the position block
    det = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
    inv = np.stack([S[:, 1, 1], -S[:, 0, 1], -S[:, 1, 0], S[:, 0, 0]], axis=1).reshape(-1, 2, 2) / det[:, None, None]
    r = np.asarray(z, float).reshape(1, -1, 2) - pos[:, None, :]
    return np.einsum("tmi,tij,tmj->tm", r, inv, r), np.log(det)
