//! The conformance suite against a real Redis server (`AGENTRY_TEST_REDIS_URL`).
