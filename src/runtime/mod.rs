//! A loaded, prepared and planned model.
