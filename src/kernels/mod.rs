//! Pure array functions: no I/O, no globals, no whole-program settings. Each
//! takes array views and, where it has thresholds, its own small parameter
//! struct. They are public so researchers can call and time them on their
//! own arrays.

pub mod change;
pub mod changeprob;
pub mod clouds;
pub mod coregister;
pub mod indices;
pub mod irmad;
pub mod label;
pub mod landcover;
pub mod morphology;
pub mod normalize;
pub mod polygons;
pub mod radiometry;
pub mod threshold;
pub mod zones;
