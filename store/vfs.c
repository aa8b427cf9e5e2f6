/* vfs.c - the SQLite VFS of the shard databases' reader connections: the
 * default "unix" VFS with one change, read-around. A query right after a
 * start reads a block's parts and indexes page by page (4 KiB preads) at
 * scattered offsets; the kernel reads ahead only for sequential reads, so
 * every page was one wait on the disk. Here a page that is not in the page
 * cache also asks the kernel to read the 512 KiB around it in the
 * background (POSIX_FADV_WILLNEED), which holds the neighbouring rows of the
 * same block, as a page fault in a memory map would - without the map,
 * whose I/O errors (a failing or full disk) arrive as SIGBUS instead of an
 * error code (SQLite's own warning about mmap_size).
 *
 * Whether a page is cached is asked of the kernel exactly: a pread with
 * RWF_NOWAIT returns the page or EAGAIN. Cached pages are returned by that
 * pread (one syscall, as before); the others take the hint and the usual
 * read of the unix VFS. Both go through a read-only descriptor of the
 * database file that the shard holds (db.c), open from before its
 * connections to after they are closed: closing a descriptor of a file
 * drops every POSIX lock this process holds on it, SQLite's included, so
 * the shim never opens or closes one itself. Every other file (WAL, shared
 * memory, journals) and every other method go to the unix VFS unchanged.
 *
 * Each store registers its own VFS (named after the store's address) while
 * it is open: SQLite's registry is process-wide, the shim's state is not.
 * Written by hand: no library provides a read-around shim, and it is small. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include "store_int.h"

/* read around a missed page: 4x a memory map's page-fault read-around; on
 * the days preset's cold queries it takes a third of 128 KiB's disk waits
 * (WAL-fsync p99 over 3 days: 227 pages missed instead of 666) */
#define RA_BYTES (512 << 10)

typedef struct ra_file {
    sqlite3_file base;   /* pMethods: ra_io, or NULL when the open failed */
    int fd;              /* the shard's descriptor of the main database (db_vfs_set_fd), or -1 */
    sqlite3_file *real;  /* the unix VFS' file, right after this struct */
} ra_file;

#define REAL(f) (((ra_file *)(f))->real)

static int ra_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int ra_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    ra_file *rf = (ra_file *)f;
    if (rf->fd >= 0 && amt > 0) {
        struct iovec iov = {buf, (size_t)amt};
        ssize_t n = preadv2(rf->fd, &iov, 1, off, RWF_NOWAIT);
        if (n == amt)
            return SQLITE_OK;
        if (n < 0 && errno == EAGAIN)
            posix_fadvise(rf->fd, off & ~(sqlite3_int64)(RA_BYTES - 1), RA_BYTES,
                          POSIX_FADV_WILLNEED);
        /* short (end of file), unsupported or failed: the unix VFS decides */
    }
    return rf->real->pMethods->xRead(rf->real, buf, amt, off);
}

static int ra_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
}

static int ra_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int ra_sync(sqlite3_file *f, int flags)
{
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int ra_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int ra_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int ra_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int ra_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int ra_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int ra_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int ra_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int ra_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int ra_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void ra_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int ra_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int ra_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int ra_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* version 3, as the unix VFS' files (shared memory for WAL mode, fetch) */
static const sqlite3_io_methods ra_io = {
    3,           ra_close,         ra_read,          ra_write,        ra_truncate,
    ra_sync,     ra_file_size,     ra_lock,          ra_unlock,       ra_check_reserved,
    ra_file_control, ra_sector_size, ra_device_chars, ra_shm_map,     ra_shm_lock,
    ra_shm_barrier, ra_shm_unmap,  ra_fetch,         ra_unfetch,
};

static int ra_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    sqlite3_vfs *unix_vfs = vfs->pAppData;
    ra_file *rf = (ra_file *)f;
    rf->fd = -1;
    rf->real = (sqlite3_file *)(rf + 1);
    f->pMethods = NULL;
    int rc = unix_vfs->xOpen(unix_vfs, name, rf->real, flags, out);
    if (rc != SQLITE_OK)
        return rc;
    if (rf->real->pMethods->iVersion < 3) {
        /* not the unix VFS' files this shim was written against: unwrapped */
        rf->real->pMethods->xClose(rf->real);
        return SQLITE_CANTOPEN;
    }
    f->pMethods = &ra_io;
    return SQLITE_OK;
}

static int ra_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xDelete(u, name, sync);
}

static int ra_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xAccess(u, name, flags, out);
}

static int ra_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xFullPathname(u, name, n, out);
}

static void *ra_dlopen(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xDlOpen(u, name);
}

static void ra_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    sqlite3_vfs *u = vfs->pAppData;
    u->xDlError(u, n, msg);
}

static void (*ra_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xDlSym(u, h, sym);
}

static void ra_dlclose(sqlite3_vfs *vfs, void *h)
{
    sqlite3_vfs *u = vfs->pAppData;
    u->xDlClose(u, h);
}

static int ra_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xRandomness(u, n, out);
}

static int ra_sleep(sqlite3_vfs *vfs, int us)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xSleep(u, us);
}

static int ra_current_time(sqlite3_vfs *vfs, double *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xCurrentTime(u, out);
}

static int ra_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xGetLastError(u, n, out);
}

static int ra_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *u = vfs->pAppData;
    return u->xCurrentTimeInt64(u, out);
}

void db_vfs_register(rw_store *st)
{
    sqlite3_vfs *u = sqlite3_vfs_find("unix");
    st->read_vfs_on = 0;
    if (!u || u->iVersion < 2)
        return; /* the readers use the default VFS */
    snprintf(st->read_vfs_name, sizeof st->read_vfs_name, "rwgate-read-%p", (void *)st);
    st->read_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(ra_file) + u->szOsFile,
        .mxPathname = u->mxPathname,
        .zName = st->read_vfs_name,
        .pAppData = u,
        .xOpen = ra_open,
        .xDelete = ra_delete,
        .xAccess = ra_access,
        .xFullPathname = ra_full_path,
        .xDlOpen = ra_dlopen,
        .xDlError = ra_dlerror,
        .xDlSym = ra_dlsym,
        .xDlClose = ra_dlclose,
        .xRandomness = ra_randomness,
        .xSleep = ra_sleep,
        .xCurrentTime = ra_current_time,
        .xGetLastError = ra_last_error,
        .xCurrentTimeInt64 = ra_current_time64,
    };
    st->read_vfs_on = sqlite3_vfs_register(&st->read_vfs, 0) == SQLITE_OK;
}

void db_vfs_set_fd(sqlite3 *db, int fd)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK && f &&
        f->pMethods == &ra_io)
        ((ra_file *)f)->fd = fd;
}

void db_vfs_unregister(rw_store *st)
{
    if (st->read_vfs_on)
        sqlite3_vfs_unregister(&st->read_vfs);
    st->read_vfs_on = 0;
}
