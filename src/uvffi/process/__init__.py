"""Child processes: spawning (uv_spawn, posix_spawn or Popen), watching
their exit, and the subprocess transport with its loop facet."""
