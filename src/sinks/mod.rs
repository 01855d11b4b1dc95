//! Where records go: GeoJSON files, dispatch packages per city and county,
//! the batch summary, and the taps that write rasters and model features.

pub mod dispatch;
pub mod features;
pub mod geojson;
pub mod rasters;
pub mod summary;
