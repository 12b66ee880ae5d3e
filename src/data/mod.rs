//! The user's labelled images: ingest from a dropped folder, a zip or loose files, with an error per bad file
//! and nothing already loaded ever lost; and the stratified train/validation split.

pub mod ingest;
pub mod paths;
pub mod split;
pub mod zip_archive;

pub use ingest::{ClassData, Dataset, FileError, IngestReport, InputFile, Placement, Sample, plan_folder};
