//! End-to-end tests of Tether live in `tests/`: each file is one area (the control plane itself,
//! later the server and the agent), run against the shared local control plane of the test kit.
