//! Memory planning: tensor lifetimes to arena offsets.
