"""The HTTP server: OpenAI-compatible API, native API, projects and keys, limits."""
