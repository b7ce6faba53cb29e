pub use loader::BackupLoader;
pub use saver::BackupSaver;

mod loader;
mod saver;
