/* Process shim: a vfork-style spawn for Linux/glibc.
 *
 * libuv 1.44's uv_spawn forks: the kernel copies the parent's page tables,
 * so a spawn costs time in proportion to the interpreter's memory (about
 * 0.6 ms for a small CPython, 4 ms with a 200 MB heap), where CPython's
 * subprocess uses vfork and stays near 0.1 ms.  glibc's posix_spawn is
 * vfork-based (CLONE_VM|CLONE_VFORK) and reports exec errors to the
 * parent; the child is then watched through a pidfd polled by libuv
 * (see process/spawn.py).  Platforms without this keep using uv_spawn. */

#if defined(__linux__) && defined(__GLIBC__)
#  include <spawn.h>
#  include <signal.h>
#  include <fcntl.h>
#  include <errno.h>
#  include <unistd.h>
#  include <sys/syscall.h>
#  if __GLIBC_PREREQ(2, 29) && defined(SYS_pidfd_open)
     /* 2.29: addchdir_np, and adddup2(fd, fd) clears FD_CLOEXEC */
#    define UVFFI_HAVE_FAST_SPAWN 1
#  endif
#endif

#ifdef UVFFI_HAVE_FAST_SPAWN
extern char **environ;
#endif

static int uvffi_fast_spawn_available(void)
{
#ifdef UVFFI_HAVE_FAST_SPAWN
    return 1;
#else
    return 0;
#endif
}

/* stdio[i]: -1 inherit fd i as it is, -2 /dev/null, else the fd to put
 * there.  keep: fds the child inherits at the same number (pass_fds).
 * envp NULL: the parent's environment.  pgroup >= 0: setpgid(0, pgroup)
 * (Popen's process_group).  restore_signals: SIGPIPE and SIGXFSZ, which
 * Python ignores, back to their defaults (Popen's restore_signals).
 * Returns 0 or a negative errno. */
static int uvffi_fast_spawn(const char *file, char **argv, char **envp,
                            const char *cwd, const int *stdio, int new_session,
                            int pgroup, int restore_signals,
                            const int *keep, int nkeep, int *pid_out)
{
#ifdef UVFFI_HAVE_FAST_SPAWN
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t dflt, none;
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    pid_t pid;
    int rc, i;

    rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0)
        return -rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -rc;
    }
    for (i = 0; i < 3 && rc == 0; i++) {
        if (stdio[i] == -2)
            rc = posix_spawn_file_actions_addopen(&actions, i, "/dev/null",
                                                  i == 0 ? O_RDONLY : O_RDWR, 0);
        else if (stdio[i] >= 0)
            rc = posix_spawn_file_actions_adddup2(&actions, stdio[i], i);
    }
    for (i = 0; i < nkeep && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&actions, keep[i], keep[i]);
    if (rc == 0 && cwd != NULL)
        rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);
    /* Handled signals are reset by exec itself; ignored ones stay ignored
     * except those Popen restores.  The mask is emptied, as libuv does. */
    sigemptyset(&dflt);
    if (restore_signals) {
        sigaddset(&dflt, SIGPIPE);
        sigaddset(&dflt, SIGXFSZ);
    }
    sigemptyset(&none);
    if (new_session)
        flags |= POSIX_SPAWN_SETSID;
    if (pgroup >= 0) {
        flags |= POSIX_SPAWN_SETPGROUP;
        if (rc == 0)
            rc = posix_spawnattr_setpgroup(&attr, (pid_t)pgroup);
    }
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &dflt);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, flags);
    if (rc == 0)
        rc = posix_spawn(&pid, file, &actions, &attr, argv,
                         envp != NULL ? envp : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return -rc;
    *pid_out = (int)pid;
    return 0;
#else
    (void)file; (void)argv; (void)envp; (void)cwd; (void)stdio;
    (void)new_session; (void)pgroup; (void)restore_signals;
    (void)keep; (void)nkeep; (void)pid_out;
    return UV_ENOSYS;
#endif
}

/* A pidfd (close-on-exec) for pid, or a negative errno. */
static int uvffi_pidfd_open(int pid)
{
#ifdef UVFFI_HAVE_FAST_SPAWN
    long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0)
        return -errno;
    if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
        int err = errno;
        close((int)fd);
        return -err;
    }
    return (int)fd;
#else
    (void)pid;
    return UV_ENOSYS;
#endif
}
