"""Constant-velocity Kalman filter for a point target (filterpy), state (x, y, vx, vy), units px and frames."""
from __future__ import annotations

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


def predict(kf: KalmanFilter, dt: float, process_std: float) -> None:
    """Advance the filter by `dt` frames under white-noise acceleration of std `process_std`."""
    kf.F = np.array([[1.0, 0.0, dt, 0.0], [0.0, 1.0, 0.0, dt], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    # block_size=2 with order_by_dim=False gives the (x, y, vx, vy) ordering
    kf.Q = Q_discrete_white_noise(dim=2, dt=dt, var=process_std**2, block_size=2, order_by_dim=False)
    kf.predict()


def innovation(kf: KalmanFilter, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (M, 2) of measurements `z` against the predicted position, and the innovation covariance S."""
    S = kf.H @ kf.P @ kf.H.T + kf.R
    return np.asarray(z, float).reshape(-1, 2) - kf.x[:2], S
