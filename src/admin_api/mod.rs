//! Typed async client for the Anthropic Admin API (see `admin-api.md`).
