//! The build script (Cargo.toml's `build`): one link flag for the `perennial` binary.
//!
//! **Packed relative relocations** (`-z pack-relative-relocs`, DT_RELR). A position-independent
//! executable carries a table of the places the dynamic loader must adjust for the address the
//! binary was loaded at (ASLR). As RELA entries (24 bytes each) perennial's table is some
//! 650 KB, all of it read at every start, and so resident for the daemon's whole life; packed
//! as RELR bitmaps it is some 8 KB ("RELR relative relocation format",
//! https://maskray.me/blog/2021-10-31-relative-relocations-and-relr). ASLR is kept, unlike
//! with a non-PIE binary.
//!
//! The loader must understand DT_RELR: glibc does from 2.36 (its NEWS for 2.36). The linker
//! then records a need for the `GLIBC_ABI_DT_RELR` symbol version (GNU ld 2.38's and lld's
//! `-z pack-relative-relocs` documentation), so a binary copied to an older glibc refuses to
//! start with a clear message instead of misbehaving. The flag is given only for a native
//! build on a Linux with glibc 2.36 or later: the glibc it runs on is the one it is built on.
//! Everywhere else (another libc, a cross build) the binary is linked as before.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=src/build.rs");
    let target_is_host = env::var("TARGET").ok() == env::var("HOST").ok();
    let linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if target_is_host && linux_gnu && host_glibc().is_some_and(|version| version >= (2, 36)) {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The version of the glibc this build script runs on (`gnu_get_libc_version(3)`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn host_glibc() -> Option<(u32, u32)> {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = version.to_str().ok()?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn host_glibc() -> Option<(u32, u32)> {
    None
}
