/*
 * v4l2_emu.c — an LD_PRELOAD shim that emulates one V4L2 capture device, so spotter's V4L2
 * code runs its REAL ioctl/mmap/poll path in tests without a camera or kernel module.
 *
 * Build: cc -shared -fPIC -O1 -o libv4l2_emu.so v4l2_emu.c -ldl
 *
 * Intercepted: open/open64/openat/openat64 (of the emulated path only), close, ioctl and
 * syscall(SYS_ioctl, ...) (the Rust `v4l` crate issues ioctls through syscall()), mmap/mmap64,
 * munmap (of buffers handed out here), poll. Everything else is forwarded to libc untouched.
 * select() is not emulated: the v4l crate only uses poll().
 *
 * Environment:
 *   V4L2_EMU_PATH          emulated device path (default /dev/video-emu0)
 *   V4L2_EMU_FORMATS       offered formats in order, comma separated, from YUYV,MJPG,NV12
 *                          (default "YUYV,MJPG,NV12"; MJPG needs V4L2_EMU_MJPEG)
 *   V4L2_EMU_MJPEG         a JPEG file served as every MJPEG frame
 *   V4L2_EMU_FPS           frame pacing (default 30)
 *   V4L2_EMU_FLAG          "device gone" flag file: while it exists, open() fails with ENOENT
 *                          and every ioctl/poll on an fd opened before fails with ENODEV/POLLERR
 *                          (an fd that saw the device vanish stays dead, as in the kernel)
 *   V4L2_EMU_VANISH_AFTER  after this many frames (counted over the process) create the flag
 *                          file once, i.e. the device vanishes until the test removes the file
 *
 * Sizes offered for every format: 640x480 and 320x240 (discrete). Frame intervals 1/30, 1/15.
 *
 * YUYV/NV12 frame n content (the test checks RGB of these known values), by row band:
 *   rows [0, h/4):     Y=81  U=90  V=240  (BT.601 red)
 *   rows [h/4, h/2):   Y=145 U=54  V=34   (green)
 *   rows [h/2, 3h/4):  Y=41  U=240 V=110  (blue)
 *   rows [3h/4, h):    Y=16+(n*10)%220, U=V=128 (grey whose level encodes the frame number)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 16
#define MAX_BUFS 8
#define MAX_FMTS 3
#define PAGE 4096u

typedef struct {
    int in_use;
    int fd;
    int dead;       /* saw the device vanish */
    uint32_t fourcc, width, height;
    uint32_t nbufs;
    uint32_t buflen;
    void *map[MAX_BUFS];
    int queued[MAX_BUFS]; /* queue order stamp, 0 = not queued */
    int qstamp;
    int streaming;
    uint32_t sequence;
    struct timespec t0;  /* STREAMON time */
    uint64_t frames;     /* frames dequeued since STREAMON */
    uint32_t fps_num, fps_den; /* time per frame = num/den */
} emu_fd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static emu_fd fds[MAX_FDS];
static int inited;
static char emu_path[512] = "/dev/video-emu0";
static char flag_path[512];
static long vanish_after = -1;
static int vanished_once;
static uint64_t total_frames;
static uint32_t formats[MAX_FMTS];
static int nformats;
static unsigned char *mjpeg;
static size_t mjpeg_len;
static unsigned default_fps = 30;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static long (*real_syscall)(long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);

static void resolve(void) {
    if (real_open) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_syscall = dlsym(RTLD_NEXT, "syscall");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_munmap = dlsym(RTLD_NEXT, "munmap");
    real_poll = dlsym(RTLD_NEXT, "poll");
}

/* Called with `lock` held. */
static void init_config(void) {
    if (inited) return;
    inited = 1;
    resolve();
    const char *s = getenv("V4L2_EMU_PATH");
    if (s && *s) snprintf(emu_path, sizeof emu_path, "%s", s);
    s = getenv("V4L2_EMU_FLAG");
    if (s) snprintf(flag_path, sizeof flag_path, "%s", s);
    s = getenv("V4L2_EMU_VANISH_AFTER");
    if (s && *s) vanish_after = atol(s);
    s = getenv("V4L2_EMU_FPS");
    if (s && atoi(s) > 0) default_fps = (unsigned)atoi(s);
    s = getenv("V4L2_EMU_MJPEG");
    if (s && *s) {
        FILE *f = fopen(s, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            if (n > 0) {
                mjpeg = malloc((size_t)n);
                if (mjpeg && fread(mjpeg, 1, (size_t)n, f) == (size_t)n) mjpeg_len = (size_t)n;
            }
            fclose(f);
        }
    }
    const char *list = getenv("V4L2_EMU_FORMATS");
    if (!list || !*list) list = "YUYV,MJPG,NV12";
    for (const char *p = list; *p && nformats < MAX_FMTS;) {
        uint32_t fc = 0;
        if (!strncmp(p, "YUYV", 4)) fc = V4L2_PIX_FMT_YUYV;
        else if (!strncmp(p, "MJPG", 4)) fc = mjpeg_len ? V4L2_PIX_FMT_MJPEG : 0;
        else if (!strncmp(p, "NV12", 4)) fc = V4L2_PIX_FMT_NV12;
        if (fc) formats[nformats++] = fc;
        const char *c = strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
}

static int device_gone(void) {
    return flag_path[0] && access(flag_path, F_OK) == 0;
}

static emu_fd *find_fd(int fd) {
    for (int i = 0; i < MAX_FDS; i++)
        if (fds[i].in_use && fds[i].fd == fd) return &fds[i];
    return NULL;
}

static int is_emu_path(const char *path) {
    return path && strcmp(path, emu_path) == 0;
}

static int emu_open(void) {
    if (device_gone()) {
        errno = ENOENT;
        return -1;
    }
    /* A real fd, so the number is unique and close() works; all its I/O is emulated. */
    int fd = real_open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    for (int i = 0; i < MAX_FDS; i++) {
        if (!fds[i].in_use) {
            memset(&fds[i], 0, sizeof fds[i]);
            fds[i].in_use = 1;
            fds[i].fd = fd;
            fds[i].fourcc = formats[0];
            fds[i].width = 640;
            fds[i].height = 480;
            fds[i].fps_num = 1;
            fds[i].fps_den = default_fps;
            return fd;
        }
    }
    real_close(fd);
    errno = EMFILE;
    return -1;
}

static int open_common(const char *path, int flags, mode_t mode, int dirfd, int at) {
    pthread_mutex_lock(&lock);
    init_config();
    if (is_emu_path(path)) {
        int r = emu_open();
        int e = errno;
        pthread_mutex_unlock(&lock);
        errno = e;
        return r;
    }
    pthread_mutex_unlock(&lock);
    return at ? real_openat(dirfd, path, flags, mode) : real_open(path, flags, mode);
}

static mode_t va_mode(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = va_mode(flags, ap); va_end(ap);
    return open_common(path, flags, m, AT_FDCWD, 0);
}
int open64(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = va_mode(flags, ap); va_end(ap);
    return open_common(path, flags, m, AT_FDCWD, 0);
}
int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = va_mode(flags, ap); va_end(ap);
    return open_common(path, flags, m, dirfd, 1);
}
int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = va_mode(flags, ap); va_end(ap);
    return open_common(path, flags, m, dirfd, 1);
}

int close(int fd) {
    pthread_mutex_lock(&lock);
    resolve();
    emu_fd *e = find_fd(fd);
    if (e) {
        /* Buffers still mapped stay valid until munmap, as with a real driver. */
        e->in_use = 0;
    }
    pthread_mutex_unlock(&lock);
    return real_close(fd);
}

static uint32_t frame_size(uint32_t fourcc, uint32_t w, uint32_t h) {
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV: return w * h * 2;
    case V4L2_PIX_FMT_NV12: return w * h * 3 / 2;
    default: return (uint32_t)(mjpeg_len > w * h ? mjpeg_len : w * h);
    }
}

static int offers(uint32_t fc) {
    for (int i = 0; i < nformats; i++)
        if (formats[i] == fc) return 1;
    return 0;
}

static void fill_pix(emu_fd *e, struct v4l2_pix_format *p) {
    memset(p, 0, sizeof *p);
    p->width = e->width;
    p->height = e->height;
    p->pixelformat = e->fourcc;
    p->field = V4L2_FIELD_NONE;
    p->bytesperline = e->fourcc == V4L2_PIX_FMT_YUYV ? e->width * 2
                      : e->fourcc == V4L2_PIX_FMT_NV12 ? e->width : 0;
    p->sizeimage = frame_size(e->fourcc, e->width, e->height);
    p->colorspace = e->fourcc == V4L2_PIX_FMT_MJPEG ? V4L2_COLORSPACE_JPEG : V4L2_COLORSPACE_SMPTE170M;
}

/* Adjust a requested format to what the device supports (as S_FMT/TRY_FMT must). */
static void adjust(struct v4l2_pix_format *p, uint32_t *fc, uint32_t *w, uint32_t *h) {
    *fc = offers(p->pixelformat) ? p->pixelformat : formats[0];
    long d640 = labs((long)p->width - 640) + labs((long)p->height - 480);
    long d320 = labs((long)p->width - 320) + labs((long)p->height - 240);
    if (d320 < d640) { *w = 320; *h = 240; } else { *w = 640; *h = 480; }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double due_time(emu_fd *e) {
    double t0 = e->t0.tv_sec + e->t0.tv_nsec / 1e9;
    return t0 + (double)e->frames * e->fps_num / e->fps_den;
}

static void vanish_if_due(void) {
    if (vanish_after >= 0 && !vanished_once && (long)total_frames >= vanish_after && flag_path[0]) {
        vanished_once = 1;
        int fd = real_open(flag_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) real_close(fd);
    }
}

static void render(emu_fd *e, unsigned char *dst, uint64_t n) {
    uint32_t w = e->width, h = e->height;
    static const unsigned char band[3][3] = {{81, 90, 240}, {145, 54, 34}, {41, 240, 110}};
    unsigned char grey = (unsigned char)(16 + (n * 10) % 220);
    for (uint32_t y = 0; y < h; y++) {
        int b = (int)(y * 4 / h);
        unsigned char Y = b < 3 ? band[b][0] : grey;
        unsigned char U = b < 3 ? band[b][1] : 128;
        unsigned char V = b < 3 ? band[b][2] : 128;
        if (e->fourcc == V4L2_PIX_FMT_YUYV) {
            unsigned char *row = dst + (size_t)y * w * 2;
            for (uint32_t x = 0; x < w; x += 2) {
                row[x * 2] = Y; row[x * 2 + 1] = U; row[x * 2 + 2] = Y; row[x * 2 + 3] = V;
            }
        } else { /* NV12 */
            memset(dst + (size_t)y * w, Y, w);
            if (y % 2 == 0) {
                unsigned char *uv = dst + (size_t)w * h + (size_t)(y / 2) * w;
                for (uint32_t x = 0; x < w; x += 2) { uv[x] = U; uv[x + 1] = V; }
            }
        }
    }
}

static int emu_ioctl(emu_fd *e, unsigned long req, void *arg) {
    if (e->dead || device_gone()) {
        e->dead = 1;
        errno = ENODEV;
        return -1;
    }
    switch (req) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *c = arg;
        memset(c, 0, sizeof *c);
        snprintf((char *)c->driver, sizeof c->driver, "v4l2-emu");
        snprintf((char *)c->card, sizeof c->card, "spotter emulated camera");
        snprintf((char *)c->bus_info, sizeof c->bus_info, "emu:0");
        c->version = 0x060100;
        c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || f->index >= (uint32_t)nformats) break;
        uint32_t idx = f->index;
        memset(f, 0, sizeof *f);
        f->index = idx;
        f->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        f->pixelformat = formats[idx];
        f->flags = formats[idx] == V4L2_PIX_FMT_MJPEG ? V4L2_FMT_FLAG_COMPRESSED : 0;
        snprintf((char *)f->description, sizeof f->description, "%.4s", (char *)&formats[idx]);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        if (!offers(s->pixel_format) || s->index > 1) break;
        s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        s->discrete.width = s->index == 0 ? 640 : 320;
        s->discrete.height = s->index == 0 ? 480 : 240;
        return 0;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *v = arg;
        if (!offers(v->pixel_format) || v->index > 1) break;
        v->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        v->discrete.numerator = 1;
        v->discrete.denominator = v->index == 0 ? 30 : 15;
        return 0;
    }
    case VIDIOC_G_FMT: {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) break;
        fill_pix(e, &f->fmt.pix);
        return 0;
    }
    case VIDIOC_TRY_FMT:
    case VIDIOC_S_FMT: {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) break;
        if (req == VIDIOC_S_FMT && e->nbufs) { errno = EBUSY; return -1; }
        emu_fd tmp = *e;
        adjust(&f->fmt.pix, &tmp.fourcc, &tmp.width, &tmp.height);
        if (req == VIDIOC_S_FMT) { e->fourcc = tmp.fourcc; e->width = tmp.width; e->height = tmp.height; }
        fill_pix(&tmp, &f->fmt.pix);
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) break;
        if (req == VIDIOC_S_PARM) {
            struct v4l2_fract t = p->parm.capture.timeperframe;
            /* Offered rates: 30 and 15 fps; pick the closer. */
            double want = t.numerator ? (double)t.denominator / t.numerator : 30;
            e->fps_num = 1;
            e->fps_den = want > 22.5 ? 30 : 15;
        }
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe.numerator = e->fps_num;
        p->parm.capture.timeperframe.denominator = e->fps_den;
        return 0;
    }
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        if (r->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || r->memory != V4L2_MEMORY_MMAP) break;
        if (e->streaming) { errno = EBUSY; return -1; }
        uint32_t n = r->count;
        if (n > MAX_BUFS) n = MAX_BUFS;
        if (n && n < 2) n = 2;
        e->nbufs = n;
        e->buflen = (frame_size(e->fourcc, e->width, e->height) + PAGE - 1) / PAGE * PAGE;
        memset(e->queued, 0, sizeof e->queued);
        r->count = n;
        return 0;
    }
    case VIDIOC_QUERYBUF:
    case VIDIOC_QBUF:
    case VIDIOC_DQBUF: {
        struct v4l2_buffer *b = arg;
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP) break;
        if (req == VIDIOC_DQBUF) {
            if (!e->streaming) break;
            int best = -1;
            for (uint32_t i = 0; i < e->nbufs; i++)
                if (e->queued[i] && (best < 0 || e->queued[i] < e->queued[best])) best = (int)i;
            if (best < 0 || now_s() < due_time(e)) { errno = EAGAIN; return -1; }
            uint32_t i = (uint32_t)best;
            if (!e->map[i]) { errno = EINVAL; return -1; }
            uint32_t used;
            if (e->fourcc == V4L2_PIX_FMT_MJPEG) {
                memcpy(e->map[i], mjpeg, mjpeg_len);
                used = (uint32_t)mjpeg_len;
            } else {
                render(e, e->map[i], e->frames);
                used = frame_size(e->fourcc, e->width, e->height);
            }
            e->queued[i] = 0;
            e->frames++;
            total_frames++;
            memset(b, 0, sizeof *b);
            b->index = i;
            b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
            b->memory = V4L2_MEMORY_MMAP;
            b->bytesused = used;
            b->length = e->buflen;
            b->m.offset = i * e->buflen;
            b->field = V4L2_FIELD_NONE;
            b->sequence = e->sequence++;
            b->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE;
            vanish_if_due();
            return 0;
        }
        if (b->index >= e->nbufs) break;
        if (req == VIDIOC_QBUF) {
            if (e->queued[b->index]) break;
            e->queued[b->index] = ++e->qstamp;
            b->flags |= V4L2_BUF_FLAG_QUEUED;
            return 0;
        }
        uint32_t i = b->index;
        memset(b, 0, sizeof *b);
        b->index = i;
        b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b->memory = V4L2_MEMORY_MMAP;
        b->length = e->buflen;
        b->m.offset = i * e->buflen;
        b->flags = (e->map[i] ? V4L2_BUF_FLAG_MAPPED : 0) | (e->queued[i] ? V4L2_BUF_FLAG_QUEUED : 0);
        return 0;
    }
    case VIDIOC_STREAMON:
        if (!e->nbufs) break;
        e->streaming = 1;
        e->frames = 0;
        clock_gettime(CLOCK_MONOTONIC, &e->t0);
        return 0;
    case VIDIOC_STREAMOFF:
        e->streaming = 0;
        memset(e->queued, 0, sizeof e->queued);
        return 0;
    default:
        errno = ENOTTY;
        return -1;
    }
    errno = EINVAL;
    return -1;
}

static int ioctl_common(int fd, unsigned long req, void *arg, int *handled) {
    pthread_mutex_lock(&lock);
    init_config();
    emu_fd *e = find_fd(fd);
    *handled = e != NULL;
    int r = 0, err = 0;
    if (e) {
        r = emu_ioctl(e, req, arg);
        err = errno;
    }
    pthread_mutex_unlock(&lock);
    errno = err;
    return r;
}

int ioctl(int fd, unsigned long req, ...) {
    va_list ap; va_start(ap, req); void *arg = va_arg(ap, void *); va_end(ap);
    int handled;
    int r = ioctl_common(fd, req, arg, &handled);
    if (handled) return r;
    return real_ioctl(fd, req, arg);
}

long syscall(long nr, ...) {
    va_list ap; va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_ioctl) {
        int handled;
        int r = ioctl_common((int)a[0], (unsigned long)a[1], (void *)a[2], &handled);
        if (handled) return r;
    }
    resolve();
    return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    pthread_mutex_lock(&lock);
    init_config();
    emu_fd *e = fd >= 0 ? find_fd(fd) : NULL;
    if (!e) {
        pthread_mutex_unlock(&lock);
        return real_mmap(addr, len, prot, flags, fd, off);
    }
    void *res = MAP_FAILED;
    int err = EINVAL;
    if (e->dead || device_gone()) {
        e->dead = 1;
        err = ENODEV;
    } else if (e->buflen && off % e->buflen == 0 && (uint32_t)(off / e->buflen) < e->nbufs &&
               len <= e->buflen) {
        uint32_t i = (uint32_t)(off / e->buflen);
        res = real_mmap(NULL, e->buflen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (res != MAP_FAILED) e->map[i] = res; else err = errno;
    }
    pthread_mutex_unlock(&lock);
    errno = err;
    return res;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len) {
    pthread_mutex_lock(&lock);
    resolve();
    for (int i = 0; i < MAX_FDS; i++)
        for (int j = 0; j < MAX_BUFS; j++)
            if (fds[i].map[j] == addr) fds[i].map[j] = NULL;
    pthread_mutex_unlock(&lock);
    return real_munmap(addr, len);
}

int poll(struct pollfd *pfds, nfds_t n, int timeout_ms) {
    pthread_mutex_lock(&lock);
    init_config();
    emu_fd *e = n == 1 ? find_fd(pfds[0].fd) : NULL;
    if (!e) {
        pthread_mutex_unlock(&lock);
        return real_poll(pfds, n, timeout_ms);
    }
    double deadline = timeout_ms < 0 ? 1e300 : now_s() + timeout_ms / 1000.0;
    for (;;) {
        if (e->dead || device_gone()) {
            e->dead = 1;
            pfds[0].revents = POLLERR | POLLHUP;
            pthread_mutex_unlock(&lock);
            return 1;
        }
        int any_queued = 0;
        for (uint32_t i = 0; i < e->nbufs; i++) any_queued |= e->queued[i] != 0;
        double due = e->streaming && any_queued ? due_time(e) : 1e300;
        double now = now_s();
        if (now >= due) {
            pfds[0].revents = POLLIN | POLLRDNORM;
            pthread_mutex_unlock(&lock);
            return 1;
        }
        if (now >= deadline) {
            pfds[0].revents = 0;
            pthread_mutex_unlock(&lock);
            return 0;
        }
        /* Sleep without the lock, at most 10 ms so a vanish flag is noticed promptly. */
        double until = due < deadline ? due : deadline;
        double step = until - now;
        if (step > 0.01) step = 0.01;
        pthread_mutex_unlock(&lock);
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&lock);
        if (!e->in_use) { /* closed meanwhile */
            pthread_mutex_unlock(&lock);
            errno = EBADF;
            return -1;
        }
    }
}
