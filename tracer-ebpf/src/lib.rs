#![no_std]
// This file exists so that the user crate can depend on this one as a build dependency;
// the programs are in main.rs and its modules.
