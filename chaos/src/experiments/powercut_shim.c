/*
 * libpowercut: an LD_PRELOAD shim that lets rsp-chaos emulate a power cut.
 *
 * A killed process loses nothing the kernel already holds: its writes sit
 * in the page cache and reach the disk later. A power cut loses every write
 * that was not made durable with fsync/fdatasync. To emulate that, this shim
 * keeps an undo log per file under $POWERCUT_ROOT: before each write it
 * saves the bytes (and the file size) the write replaces; after a
 * successful fsync/fdatasync of the file it forgets the records written
 * before the sync began. After a SIGKILL the harness replays the undo logs
 * backwards, which leaves each file as it was at its last sync.
 *
 * Model and limits: only fsync/fdatasync/sync/syncfs make data durable
 * (sync_file_range does not: it flushes neither metadata nor the disk's
 * cache). Directory operations (create, rename, unlink) count as durable at
 * once. mmap writes are not seen. Writes are serialised by one lock.
 *
 * Environment: POWERCUT_ROOT (absolute directory whose files are tracked),
 * POWERCUT_MATCH (optional: only paths below the root containing this text,
 * e.g. the storage engine's directory), POWERCUT_UNDO (directory for the
 * undo logs, outside what is tracked).
 * Undo record: u64 offset, u64 size of the file before, u64 n, n old bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536
#define MAX_FILES 4096

struct tracked {
    char *path;
    int undo_fd;
    uint64_t undo_len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked files[MAX_FILES];
static int n_files;
static int fd_file[MAX_FDS]; /* file index + 1; 0 = untracked */
static char root[4096];
static size_t root_len;
static char undo_dir[4096];
static char match[1024];

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off64_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void init(void) {
    RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64);
    RESOLVE(creat); RESOLVE(creat64); RESOLVE(close);
    RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3); RESOLVE(fcntl);
    RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(writev);
    RESOLVE(pwritev); RESOLVE(pwritev64);
    RESOLVE(ftruncate); RESOLVE(ftruncate64); RESOLVE(fallocate); RESOLVE(fallocate64);
    RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(sync); RESOLVE(syncfs);
    const char *r = getenv("POWERCUT_ROOT");
    const char *u = getenv("POWERCUT_UNDO");
    if (r && u && r[0] == '/' && u[0] == '/' && strlen(r) < sizeof root - 2 &&
        strlen(u) < sizeof undo_dir - 1) {
        strcpy(root, r);
        root_len = strlen(root);
        while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = 0;
        strcpy(undo_dir, u);
        const char *m = getenv("POWERCUT_MATCH");
        if (m && strlen(m) < sizeof match) strcpy(match, m);
    }
}

static int write_all(int fd, const void *buf, size_t n, uint64_t off) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = real_pwrite64(fd, p, n, (off64_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Called with the lock held, after a successful open of fd. */
static void track(int fd) {
    if (root_len == 0 || fd < 0 || fd >= MAX_FDS) return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if ((size_t)n <= root_len || strncmp(path, root, root_len) != 0 || path[root_len] != '/')
        return;
    if (match[0] && !strstr(path + root_len, match)) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    for (int i = 0; i < n_files; i++) {
        if (strcmp(files[i].path, path) == 0) {
            fd_file[fd] = i + 1;
            return;
        }
    }
    if (n_files >= MAX_FILES) return;
    char undo[8192];
    snprintf(undo, sizeof undo, "%s/", undo_dir);
    size_t len = strlen(undo);
    for (const char *c = path; *c && len < sizeof undo - 8; c++) undo[len++] = *c == '/' ? '%' : *c;
    memcpy(undo + len, ".undo", 6);
    int ufd = real_open(undo, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (ufd < 0) return;
    struct stat ust;
    if (fstat(ufd, &ust) != 0) {
        real_close(ufd);
        return;
    }
    files[n_files].path = strdup(path);
    files[n_files].undo_fd = ufd;
    files[n_files].undo_len = (uint64_t)ust.st_size;
    n_files++;
    fd_file[fd] = n_files;
}

/* The undo log's length, read from the file: another process (a `sync`
 * command, a restarted node) may have shortened it. Lock held. */
static uint64_t undo_len(struct tracked *t) {
    struct stat st;
    if (fstat(t->undo_fd, &st) == 0) t->undo_len = (uint64_t)st.st_size;
    return t->undo_len;
}

static struct tracked *tracked_of(int fd) {
    if (fd < 0 || fd >= MAX_FDS || fd_file[fd] == 0) return NULL;
    return &files[fd_file[fd] - 1];
}

/* Saves what a write of n bytes at off replaces. Lock held. */
static void save(struct tracked *t, int fd, uint64_t off, uint64_t n) {
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t old_n = 0;
    if (off < size) old_n = (size - off < n) ? size - off : n;
    uint64_t header[3] = {off, size, old_n};
    undo_len(t);
    char *buf = NULL;
    if (old_n > 0) {
        buf = malloc(old_n);
        if (!buf) return;
        uint64_t got = 0;
        while (got < old_n) {
            ssize_t r = pread64(fd, buf + got, old_n - got, (off64_t)(off + got));
            if (r <= 0) {
                if (r < 0 && errno == EINTR) continue;
                break;
            }
            got += (uint64_t)r;
        }
        if (got < old_n) memset(buf + got, 0, old_n - got);
    }
    if (write_all(t->undo_fd, header, sizeof header, t->undo_len) == 0 &&
        (old_n == 0 || write_all(t->undo_fd, buf, old_n, t->undo_len + sizeof header) == 0))
        t->undo_len += sizeof header + old_n;
    free(buf);
}

/* After a sync that began when the log was `mark` long: forget records
 * before mark. Lock held. */
static void forget(struct tracked *t, uint64_t mark) {
    if (mark >= undo_len(t)) {
        if (real_ftruncate64(t->undo_fd, 0) == 0) t->undo_len = 0;
        return;
    }
    uint64_t rest = t->undo_len - mark;
    char *buf = malloc(rest);
    if (!buf) return;
    uint64_t got = 0;
    while (got < rest) {
        ssize_t r = pread64(t->undo_fd, buf + got, rest - got, (off64_t)(mark + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            break;
        }
        got += (uint64_t)r;
    }
    if (got == rest && write_all(t->undo_fd, buf, rest, 0) == 0 &&
        real_ftruncate64(t->undo_fd, (off64_t)rest) == 0)
        t->undo_len = rest;
    free(buf);
}

static int after_open(int fd) {
    if (fd >= 0 && root_len > 0) {
        pthread_mutex_lock(&lock);
        if (fd < MAX_FDS) fd_file[fd] = 0;
        track(fd);
        pthread_mutex_unlock(&lock);
    }
    return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *p, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return after_open(real_open(p, flags, m));
}
int open64(const char *p, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return after_open(real_open64(p, flags, m));
}
int openat(int d, const char *p, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return after_open(real_openat(d, p, flags, m));
}
int openat64(int d, const char *p, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return after_open(real_openat64(d, p, flags, m));
}
int creat(const char *p, mode_t m) { return after_open(real_creat(p, m)); }
int creat64(const char *p, mode_t m) { return after_open(real_creat64(p, m)); }

int close(int fd) {
    if (fd >= 0 && fd < MAX_FDS && fd_file[fd]) {
        pthread_mutex_lock(&lock);
        fd_file[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

/* A duplicate refers to the same file as the original. */
static int dup_of(int old, int fd) {
    if (fd >= 0 && fd < MAX_FDS && old >= 0 && old < MAX_FDS && fd != old) {
        pthread_mutex_lock(&lock);
        fd_file[fd] = fd_file[old];
        pthread_mutex_unlock(&lock);
    }
    return fd;
}

int dup(int old) { return dup_of(old, real_dup(old)); }
int dup2(int old, int fd) { return dup_of(old, real_dup2(old, fd)); }
int dup3(int old, int fd, int flags) { return dup_of(old, real_dup3(old, fd, flags)); }

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return dup_of(fd, r);
    return r;
}
int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return dup_of(fd, r);
    return r;
}

static size_t iov_len(const struct iovec *iov, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += iov[i].iov_len;
    return len;
}

#define GUARDED(fd, off_expr, len, call)                                   \
    do {                                                                   \
        struct tracked *t_ = tracked_of(fd);                               \
        if (!t_) return call;                                              \
        pthread_mutex_lock(&lock);                                         \
        t_ = tracked_of(fd);                                               \
        if (t_) {                                                          \
            int64_t o_ = (int64_t)(off_expr);                              \
            if (o_ >= 0) save(t_, fd, (uint64_t)o_, (uint64_t)(len));      \
        }                                                                  \
        __typeof__(call) r_ = call;                                        \
        int e_ = errno;                                                    \
        pthread_mutex_unlock(&lock);                                       \
        errno = e_;                                                        \
        return r_;                                                         \
    } while (0)

static int64_t cur_off(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
    }
    return (int64_t)lseek64(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *b, size_t n) { GUARDED(fd, cur_off(fd), n, real_write(fd, b, n)); }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { GUARDED(fd, o, n, real_pwrite(fd, b, n, o)); }
ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o) { GUARDED(fd, o, n, real_pwrite64(fd, b, n, o)); }
ssize_t writev(int fd, const struct iovec *v, int c) { GUARDED(fd, cur_off(fd), iov_len(v, c), real_writev(fd, v, c)); }
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) { GUARDED(fd, o, iov_len(v, c), real_pwritev(fd, v, c, o)); }
ssize_t pwritev64(int fd, const struct iovec *v, int c, off64_t o) { GUARDED(fd, o, iov_len(v, c), real_pwritev64(fd, v, c, o)); }

/* A size change: saves the bytes a shrink drops (or just the old size). */
static int64_t resize_off(int fd, int64_t new_size, uint64_t *len) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    if (new_size < (int64_t)st.st_size) {
        *len = (uint64_t)(st.st_size - new_size);
        return new_size;
    }
    *len = 0;
    return st.st_size;
}

int ftruncate(int fd, off_t size) {
    uint64_t n = 0;
    GUARDED(fd, resize_off(fd, size, &n), n, real_ftruncate(fd, size));
}
int ftruncate64(int fd, off64_t size) {
    uint64_t n = 0;
    GUARDED(fd, resize_off(fd, size, &n), n, real_ftruncate64(fd, size));
}
int fallocate(int fd, int mode, off_t off, off_t len) {
    uint64_t n = 0;
    GUARDED(fd, resize_off(fd, off + len, &n), n, real_fallocate(fd, mode, off, len));
}
int fallocate64(int fd, int mode, off64_t off, off64_t len) {
    uint64_t n = 0;
    GUARDED(fd, resize_off(fd, off + len, &n), n, real_fallocate64(fd, mode, off, len));
}

static int synced(int fd, int (*call)(int)) {
    struct tracked *t = tracked_of(fd);
    if (!t) return call(fd);
    pthread_mutex_lock(&lock);
    uint64_t mark = undo_len(t);
    pthread_mutex_unlock(&lock);
    int r = call(fd);
    if (r == 0) {
        pthread_mutex_lock(&lock);
        forget(t, mark);
        pthread_mutex_unlock(&lock);
    }
    return r;
}

int fsync(int fd) { return synced(fd, real_fsync); }
int fdatasync(int fd) { return synced(fd, real_fdatasync); }

/* Files known when a global sync began, and their undo log lengths. */
static uint64_t *marks_now(int *count) {
    pthread_mutex_lock(&lock);
    *count = n_files;
    uint64_t *m = calloc((size_t)n_files + 1, sizeof *m);
    if (m)
        for (int i = 0; i < n_files; i++) m[i] = undo_len(&files[i]);
    pthread_mutex_unlock(&lock);
    return m;
}

static void forget_all(uint64_t *marks, int count) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < count && i < n_files; i++) forget(&files[i], marks[i]);
    pthread_mutex_unlock(&lock);
}

void sync(void) {
    int count = 0;
    uint64_t *m = marks_now(&count);
    real_sync();
    if (m) forget_all(m, count);
    free(m);
}

int syncfs(int fd) {
    int count = 0;
    uint64_t *m = marks_now(&count);
    int r = real_syncfs(fd);
    if (r == 0 && m) forget_all(m, count);
    free(m);
    return r;
}
