//! Wire patching.
