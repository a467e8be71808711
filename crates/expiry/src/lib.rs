//! Keep-Alive hints, idle-deadline learning and the expiry queue (see issue 3).
