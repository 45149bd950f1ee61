//! Cameras through `nokhwa` (feature `nokhwa`, off by default) for OSes without V4L2.
