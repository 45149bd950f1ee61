//! TFLite flatbuffer loader.
