//! `cocoon-host doctor`: what this host has and lacks for each platform, with the fix.
