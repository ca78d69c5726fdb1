"""Models: the registry and the backends (torch, llama.cpp, OpenAI-compatible remote) behind one interface."""
