//! The cache and its lock: two machines on one network file system, kills and stops.

mod netfs;
mod reliability;
