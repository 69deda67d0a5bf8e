/*
 * numaprobe - run a small NUMA-policy scenario against the real kernel and
 * report where every page landed.  Uses raw syscalls only (no libnuma), so it
 * links statically and runs from a bare initramfs.
 *
 * Usage:  numaprobe SCRIPT        (SCRIPT "-" = stdin)
 *         numaprobe -e 'cmd; cmd; ...'
 *
 * Output: every script command is echoed as "> <command>", followed by result
 * lines of the form  "<kind> key=value key=value ...".  Values never contain
 * spaces.  See ../README.md for the command reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_set_mempolicy_home_node
#define SYS_set_mempolicy_home_node 450
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* uapi values, defined here so old headers do not matter */
#define P_MPOL_DEFAULT 0
#define P_MPOL_PREFERRED 1
#define P_MPOL_BIND 2
#define P_MPOL_INTERLEAVE 3
#define P_MPOL_LOCAL 4
#define P_MPOL_PREFERRED_MANY 5
#define P_MPOL_WEIGHTED_INTERLEAVE 6
#define P_MPOL_F_STATIC_NODES (1 << 15)
#define P_MPOL_F_RELATIVE_NODES (1 << 14)
#define P_MPOL_F_NUMA_BALANCING (1 << 13)
#define P_MPOL_F_NODE (1 << 0)
#define P_MPOL_F_ADDR (1 << 1)
#define P_MPOL_F_MEMS_ALLOWED (1 << 2)
#define P_MPOL_MF_STRICT (1 << 0)
#define P_MPOL_MF_MOVE (1 << 1)
#define P_MPOL_MF_MOVE_ALL (1 << 2)

#define MASK_BITS 1024                     /* >= kernel MAX_NUMNODES (NODES_SHIFT=10) */
#define MASK_LONGS (MASK_BITS / (8 * sizeof(unsigned long)))
#define DEFAULT_MAXNODE (MASK_BITS + 1)    /* kernel uses maxnode-1 bits */
/* nodemask buffer for set_mempolicy/mbind: large enough for maxnode up to
 * 8*PAGE_SIZE+1 and a bit beyond, so maxnode limit cases can be probed */
#define BIG_MASK_BITS (32768 + 128)
#define BIG_MASK_LONGS (BIG_MASK_BITS / (8 * sizeof(unsigned long)))
#define MAX_NODES 64
#define MAX_REGIONS 256

static long page_size;

static const char *mode_names[] = {"default", "preferred", "bind", "interleave",
                                   "local", "preferred_many", "weighted_interleave"};

struct region {
    char *addr;
    long npages;
    int kind; /* 0 anon private, 1 shared anon, 2 memfd shared, 3 file shared, 4 file private */
    int fd;
    int live;
    char name[32];
};
static struct region regions[MAX_REGIONS];
static int nregions, cur = -1;

/* ---------------------------------------------------------------- output */
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EXDEV: return "EXDEV";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
    }
    }
}

static void report_ret(const char *op, long rc, int e)
{
    if (rc < 0)
        out("ret op=%s rc=%ld errno=%s", op, rc, errname(e));
    else
        out("ret op=%s rc=%ld", op, rc);
}

/* ------------------------------------------------------------- nodemasks */
static void mask_clear(unsigned long *m) { memset(m, 0, MASK_LONGS * sizeof(long)); }
static void mask_set(unsigned long *m, int b) { m[b / (8 * sizeof(long))] |= 1UL << (b % (8 * sizeof(long))); }
static int mask_test(const unsigned long *m, int b) { return (m[b / (8 * sizeof(long))] >> (b % (8 * sizeof(long)))) & 1; }

/* "0-3,5" -> mask of `bits` bits.  "none"/"empty" -> empty mask.  returns 0 on success */
static int parse_mask_bits(const char *s, unsigned long *m, int bits)
{
    memset(m, 0, bits / 8);
    if (!strcmp(s, "none") || !strcmp(s, "empty"))
        return 0;
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0 || a >= bits)
            return -1;
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b >= bits)
                return -1;
            p = end;
        }
        for (long i = a; i <= b; i++)
            mask_set(m, (int)i);
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return 0;
}

static int parse_mask(const char *s, unsigned long *m)
{
    return parse_mask_bits(s, m, MASK_BITS);
}

static char *mask_str(const unsigned long *m, int bits)
{
    static char buf[4096];
    char *p = buf;
    int first = 1;
    buf[0] = 0;
    for (int i = 0; i < bits; i++) {
        if (!mask_test(m, i))
            continue;
        int j = i;
        while (j + 1 < bits && mask_test(m, j + 1))
            j++;
        p += sprintf(p, "%s%d", first ? "" : ",", i);
        if (j > i)
            p += sprintf(p, "-%d", j);
        first = 0;
        i = j;
    }
    if (first)
        strcpy(buf, "none");
    return buf;
}

#define BAD_MODE INT_MIN
static int parse_mode(const char *s)
{
    for (int i = 0; i < (int)(sizeof mode_names / sizeof mode_names[0]); i++)
        if (!strcmp(s, mode_names[i]))
            return i;
    if (!strcmp(s, "prefer") || !strcmp(s, "pref"))
        return P_MPOL_PREFERRED;
    if (!strcmp(s, "membind"))
        return P_MPOL_BIND;
    if (!strcmp(s, "weighted"))
        return P_MPOL_WEIGHTED_INTERLEAVE;
    char *end;
    long v = strtol(s, &end, 0);
    if (*s && !*end)
        return (int)v;   /* raw mode value, may be negative or >= MPOL_MAX */
    return BAD_MODE;
}

static const char *mode_str(int mode)
{
    static char buf[128];
    int base = mode & ~(P_MPOL_F_STATIC_NODES | P_MPOL_F_RELATIVE_NODES | P_MPOL_F_NUMA_BALANCING);
    if (base >= 0 && base < (int)(sizeof mode_names / sizeof mode_names[0]))
        snprintf(buf, sizeof buf, "%s", mode_names[base]);
    else
        snprintf(buf, sizeof buf, "%d", base);
    return buf;
}

static const char *modeflags_str(int mode)
{
    static char buf[64];
    buf[0] = 0;
    if (mode & P_MPOL_F_STATIC_NODES) strcat(buf, buf[0] ? "|static" : "static");
    if (mode & P_MPOL_F_RELATIVE_NODES) strcat(buf, buf[0] ? "|relative" : "relative");
    if (mode & P_MPOL_F_NUMA_BALANCING) strcat(buf, buf[0] ? "|balancing" : "balancing");
    if (!buf[0]) strcpy(buf, "none");
    return buf;
}

/* ------------------------------------------------------------- tokenizer */
#define MAXTOK 64
static int tokenize(char *line, char **tok)
{
    int n = 0;
    char *save, *t;
    for (t = strtok_r(line, " \t\r\n", &save); t && n < MAXTOK; t = strtok_r(NULL, " \t\r\n", &save))
        tok[n++] = t;
    return n;
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 0);
    if (*end) {
        out("error msg=bad_number value=%s", s);
        exit(2);
    }
    return v;
}

static struct region *curreg(void)
{
    if (cur < 0 || !regions[cur].live) {
        out("error msg=no_current_region");
        exit(2);
    }
    return &regions[cur];
}

static int check_range(struct region *r, long off, long n)
{
    if (off < 0 || n < 0 || off + n > r->npages) {
        out("error msg=range_outside_region off=%ld n=%ld region_pages=%ld", off, n, r->npages);
        return -1;
    }
    return 0;
}

/* an address argument: "+N" = N bytes after the current region's start,
 * anything else = an absolute value (strtoul base 0, so "-1" = ~0UL) */
static unsigned long parse_addr(const char *s)
{
    char *end;
    unsigned long v;
    if (s[0] == '+') {
        v = strtoul(s + 1, &end, 0);
        if (*end || end == s + 1) {
            out("error msg=bad_address value=%s", s);
            exit(2);
        }
        return (unsigned long)curreg()->addr + v;
    }
    v = strtoul(s, &end, 0);
    if (*end || end == s) {
        out("error msg=bad_address value=%s", s);
        exit(2);
    }
    return v;
}

/* policy arguments shared by set_mempolicy and mbind:
 *   MODE [NODES|null] [static] [relative] [balancing] [strict] [move] [move_all] [maxnode=N]
 *        [maskaddr=ADDR] [mflags=N]
 */
struct polargs {
    int mode;
    unsigned long mask[BIG_MASK_LONGS];
    int have_mask;   /* 0 -> pass NULL nodemask */
    unsigned long maxnode;
    int maxnode_set; /* maxnode= given explicitly: keep it even with a NULL mask */
    unsigned int mbind_flags;
    int rawptr_set;  /* maskaddr=: pass this pointer as the nodemask */
    unsigned long rawptr;
    int mflags_set;  /* mflags=: pass this raw value as mbind's flags */
    unsigned long mflags;
};

static void *pol_maskptr(struct polargs *pa)
{
    if (pa->rawptr_set)
        return (void *)pa->rawptr;
    return pa->have_mask ? pa->mask : NULL;
}

static unsigned long pol_mflags(struct polargs *pa)
{
    return pa->mflags_set ? pa->mflags : pa->mbind_flags;
}

static int parse_polargs(char **tok, int n, struct polargs *pa)
{
    memset(pa, 0, sizeof *pa);
    pa->maxnode = DEFAULT_MAXNODE;
    if (n < 1)
        return -1;
    pa->mode = parse_mode(tok[0]);
    if (pa->mode == BAD_MODE) {
        out("error msg=bad_mode value=%s", tok[0]);
        return -1;
    }
    for (int i = 1; i < n; i++) {
        const char *t = tok[i];
        if (!strcmp(t, "static")) pa->mode |= P_MPOL_F_STATIC_NODES;
        else if (!strcmp(t, "relative")) pa->mode |= P_MPOL_F_RELATIVE_NODES;
        else if (!strcmp(t, "balancing")) pa->mode |= P_MPOL_F_NUMA_BALANCING;
        else if (!strcmp(t, "strict")) pa->mbind_flags |= P_MPOL_MF_STRICT;
        else if (!strcmp(t, "move")) pa->mbind_flags |= P_MPOL_MF_MOVE;
        else if (!strcmp(t, "move_all")) pa->mbind_flags |= P_MPOL_MF_MOVE_ALL;
        else if (!strncmp(t, "maxnode=", 8)) { pa->maxnode = strtoul(t + 8, NULL, 0); pa->maxnode_set = 1; }
        else if (!strncmp(t, "maskaddr=", 9)) { pa->rawptr = parse_addr(t + 9); pa->rawptr_set = 1; }
        else if (!strncmp(t, "mflags=", 7)) { pa->mflags = strtoul(t + 7, NULL, 0); pa->mflags_set = 1; }
        else if (!strcmp(t, "null") || !strcmp(t, "-")) pa->have_mask = 0;
        else if (parse_mask_bits(t, pa->mask, BIG_MASK_BITS) == 0) pa->have_mask = 1;
        else {
            out("error msg=bad_policy_arg value=%s", t);
            return -1;
        }
    }
    if (!pa->have_mask && !pa->rawptr_set && !pa->maxnode_set)
        pa->maxnode = 0;
    return 0;
}

/* ------------------------------------------------------------ sys readers */
static int node_exists(int n)
{
    char p[128];
    snprintf(p, sizeof p, "/sys/devices/system/node/node%d", n);
    return access(p, F_OK) == 0;
}

static int max_node(void)
{
    int m = -1;
    for (int i = 0; i < MAX_NODES; i++)
        if (node_exists(i))
            m = i;
    return m;
}

#define NSTAT 6
static const char *stat_names[NSTAT] = {"numa_hit", "numa_miss", "numa_foreign",
                                         "interleave_hit", "local_node", "other_node"};
static long long stat_mark[MAX_NODES][NSTAT];
static int stat_marked;

static int read_numastat(int node, long long *v)
{
    char p[128], key[64];
    long long val;
    snprintf(p, sizeof p, "/sys/devices/system/node/node%d/numastat", node);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    for (int i = 0; i < NSTAT; i++)
        v[i] = 0;
    while (fscanf(f, "%63s %lld", key, &val) == 2)
        for (int i = 0; i < NSTAT; i++)
            if (!strcmp(key, stat_names[i]))
                v[i] = val;
    fclose(f);
    return 0;
}

static void do_numastat(int mode) /* 0 absolute, 1 mark, 2 delta */
{
    int mx = max_node();
    long long v[NSTAT];
    for (int n = 0; n <= mx; n++) {
        if (read_numastat(n, v) < 0)
            continue;
        if (mode == 1) {
            memcpy(stat_mark[n], v, sizeof v);
            continue;
        }
        char line[512], *p = line;
        p += sprintf(p, "%s node=%d", mode == 2 ? "numastat_delta" : "numastat", n);
        for (int i = 0; i < NSTAT; i++)
            p += sprintf(p, " %s=%lld", stat_names[i], v[i] - (mode == 2 ? stat_mark[n][i] : 0));
        out("%s", line);
    }
    if (mode == 1) {
        stat_marked = 1;
        out("numastat_mark ok=1");
    }
}

struct zinfo {
    int node;
    char zone[16];
    long free, min, low, high, managed, present, spanned, boost;
    long prot[8];
    int nprot;
    int populated;
};

static int read_zoneinfo(struct zinfo *z, int maxz)
{
    FILE *f = fopen("/proc/zoneinfo", "r");
    char line[512];
    int n = -1;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        int node;
        char zn[16];
        if (sscanf(line, "Node %d, zone %15s", &node, zn) == 2) {
            if (n + 1 >= maxz)
                break;
            n++;
            memset(&z[n], 0, sizeof z[n]);
            z[n].node = node;
            strcpy(z[n].zone, zn);
            continue;
        }
        if (n < 0)
            continue;
        char *s = line;
        while (*s == ' ')
            s++;
        long v;
        if (sscanf(s, "pages free %ld", &v) == 1) z[n].free = v;
        else if (sscanf(s, "min %ld", &v) == 1) z[n].min = v;
        else if (sscanf(s, "boost %ld", &v) == 1) z[n].boost = v;
        else if (sscanf(s, "low %ld", &v) == 1) z[n].low = v;
        else if (sscanf(s, "high %ld", &v) == 1) z[n].high = v;
        else if (sscanf(s, "managed %ld", &v) == 1) z[n].managed = v;
        else if (sscanf(s, "present %ld", &v) == 1) z[n].present = v;
        else if (sscanf(s, "spanned %ld", &v) == 1) z[n].spanned = v;
        else if (!strncmp(s, "protection: (", 13)) {
            char *p = s + 13;
            z[n].nprot = 0;
            while (*p && *p != ')' && z[n].nprot < 8) {
                z[n].prot[z[n].nprot++] = strtol(p, &p, 10);
                while (*p == ',' || *p == ' ')
                    p++;
            }
        }
    }
    fclose(f);
    for (int i = 0; i <= n; i++)
        z[i].populated = z[i].present > 0;
    return n + 1;
}

static void do_zones(void)
{
    struct zinfo z[64];
    int nz = read_zoneinfo(z, 64);
    for (int i = 0; i < nz; i++) {
        if (!z[i].populated)
            continue;
        char prot[128], *p = prot;
        p[0] = 0;
        for (int j = 0; j < z[i].nprot; j++)
            p += sprintf(p, "%s%ld", j ? "," : "", z[i].prot[j]);
        out("zone node=%d zone=%s free=%ld min=%ld low=%ld high=%ld boost=%ld managed=%ld present=%ld protection=%s",
            z[i].node, z[i].zone, z[i].free, z[i].min, z[i].low, z[i].high, z[i].boost, z[i].managed, z[i].present, prot);
    }
}

/* headroom of a node for a movable user allocation at the low watermark:
 * sum over its populated zones of max(0, free - low - lowmem_reserve[ZONE_MOVABLE]) */
static long node_headroom_zone(int node, const char *zone)
{
    struct zinfo z[64];
    int nz = read_zoneinfo(z, 64);
    long h = 0;
    for (int i = 0; i < nz; i++) {
        if (z[i].node != node || !z[i].populated)
            continue;
        if (zone && strcmp(z[i].zone, zone))
            continue;
        long prot = z[i].nprot > 3 ? z[i].prot[3] : (z[i].nprot ? z[i].prot[z[i].nprot - 1] : 0);
        long d = z[i].free - z[i].low - prot;
        if (d > 0)
            h += d;
    }
    return h;
}

static long node_headroom(int node)
{
    return node_headroom_zone(node, NULL);
}

static void do_meminfo(void)
{
    int mx = max_node();
    for (int n = 0; n <= mx; n++) {
        char p[128], line[256];
        long total = -1, freekb = -1, used = -1;
        snprintf(p, sizeof p, "/sys/devices/system/node/node%d/meminfo", n);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            int nn;
            long v;
            if (sscanf(line, "Node %d MemTotal: %ld", &nn, &v) == 2) total = v;
            else if (sscanf(line, "Node %d MemFree: %ld", &nn, &v) == 2) freekb = v;
            else if (sscanf(line, "Node %d MemUsed: %ld", &nn, &v) == 2) used = v;
        }
        fclose(f);
        out("meminfo node=%d total_kb=%ld free_kb=%ld used_kb=%ld", n, total, freekb, used);
    }
}

static void do_cat(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) {
        out("cat path=%s errno=%s", path, errname(errno));
        return;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        out("| %s", line);
    }
    fclose(f);
}

/* /proc/vmstat counters that move when pages move in time (NUMA balancing,
 * migration, THP, tiering).  `vmstat [KEY...]` prints the named counters (all
 * of the default set when none is named), `vmstat_mark` remembers them,
 * `vmstat_delta [KEY...]` prints the change since the mark.  Counters the
 * kernel does not have are printed as -1. */
static const char *vm_default[] = {
    "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
    "numa_pages_migrated", "pgmigrate_success", "pgmigrate_fail", "thp_fault_alloc",
    "thp_fault_fallback", "thp_collapse_alloc", "pgpromote_success", "pgpromote_candidate",
    "pgdemote_kswapd", "pgdemote_direct", NULL};
#define VM_MAX 64
static char vm_mark_name[VM_MAX][64];
static long long vm_mark_val[VM_MAX];
static int vm_nmark;

static long long vmstat_read(const char *key)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char name[128];
    long long v, out_v = -1;
    if (!f)
        return -1;
    while (fscanf(f, "%127s %lld", name, &v) == 2)
        if (!strcmp(name, key)) {
            out_v = v;
            break;
        }
    fclose(f);
    return out_v;
}

static void do_vmstat(char **keys, int nkeys, int mode) /* 0 absolute, 1 mark, 2 delta */
{
    const char *use[VM_MAX];
    int n = 0;
    if (nkeys > 0)
        for (int i = 0; i < nkeys && n < VM_MAX; i++)
            use[n++] = keys[i];
    else
        for (int i = 0; vm_default[i] && n < VM_MAX; i++)
            use[n++] = vm_default[i];
    if (mode == 1) {
        vm_nmark = 0;
        for (int i = 0; i < n; i++) {
            snprintf(vm_mark_name[vm_nmark], sizeof vm_mark_name[0], "%s", use[i]);
            vm_mark_val[vm_nmark++] = vmstat_read(use[i]);
        }
        out("vmstat_mark ok=1");
        return;
    }
    char line[2048], *p = line;
    p += sprintf(p, "%s", mode == 2 ? "vmstat_delta" : "vmstat");
    for (int i = 0; i < n && p - line < (long)sizeof line - 100; i++) {
        long long v = vmstat_read(use[i]);
        if (mode == 2 && v >= 0) {
            long long base = -1;
            for (int j = 0; j < vm_nmark; j++)
                if (!strcmp(vm_mark_name[j], use[i]))
                    base = vm_mark_val[j];
            v = base >= 0 ? v - base : -1;
        }
        p += sprintf(p, " %s=%lld", use[i], v);
    }
    out("%s", line);
}

static void do_write(const char *path, const char *val)
{
    int fd = open(path, O_WRONLY);
    long rc;
    int e = 0;
    if (fd < 0) {
        out("ret op=write rc=-1 errno=%s path=%s", errname(errno), path);
        return;
    }
    rc = write(fd, val, strlen(val));
    if (rc < 0)
        e = errno;
    close(fd);
    out("ret op=write rc=%ld%s%s path=%s", rc, rc < 0 ? " errno=" : "", rc < 0 ? errname(e) : "", path);
}

static void do_getcpu(void)
{
    unsigned cpu = 0, node = 0;
    syscall(SYS_getcpu, &cpu, &node, NULL);
    out("cpu cpu=%u node=%u", cpu, node);
}

/* ---------------------------------------------------------------- pages */
/* brief: summary line only; brief == 2 ("counts"): summary without runs= and seq= */
static void query_pages(struct region *r, long off, long n, const char *tag, int brief)
{
    void **pages = calloc(n, sizeof(void *));
    int *status = calloc(n, sizeof(int));
    long count[MAX_NODES + 1] = {0};
    for (long i = 0; i < n; i++) {
        pages[i] = r->addr + (off + i) * page_size;
        status[i] = -12345;
    }
    long rc = syscall(SYS_move_pages, 0, n, pages, NULL, status, 0);
    int e = errno;
    if (rc < 0) {
        report_ret("move_pages", rc, e);
    } else {
        for (long i = 0; i < n; i++) {
            if (status[i] >= 0) {
                if (!brief)
                    out("%s region=%d index=%ld node=%d", tag, cur, off + i, status[i]);
                if (status[i] < MAX_NODES)
                    count[status[i]]++;
            } else {
                if (!brief)
                    out("%s region=%d index=%ld err=%s", tag, cur, off + i, errname(-status[i]));
                count[MAX_NODES]++;
            }
        }
        char *line = malloc(64 * n + 1024), *p = line;
        p += sprintf(p, "summary region=%d off=%ld n=%ld", cur, off, n);
        for (int k = 0; k < MAX_NODES; k++)
            if (count[k])
                p += sprintf(p, " node%d=%ld", k, count[k]);
        if (count[MAX_NODES])
            p += sprintf(p, " absent=%ld", count[MAX_NODES]);
        /* run-length form: START-END:NODE (page indexes are region-relative) */
        if (brief != 2)
            p += sprintf(p, " runs=");
        for (long i = 0; i < n && brief != 2;) {
            long j = i;
            while (j + 1 < n && status[j + 1] == status[i])
                j++;
            if (status[i] >= 0)
                p += sprintf(p, "%s%ld-%ld:%d", i ? "," : "", off + i, off + j, status[i]);
            else
                p += sprintf(p, "%s%ld-%ld:%s", i ? "," : "", off + i, off + j, errname(-status[i]));
            i = j + 1;
        }
        if (n <= 256 && brief != 2) {
            p += sprintf(p, " seq=");
            for (long i = 0; i < n; i++) {
                if (status[i] >= 0)
                    p += sprintf(p, "%s%d", i ? "," : "", status[i]);
                else
                    p += sprintf(p, "%s-", i ? "," : "");
            }
        }
        out("%s", line);
        free(line);
    }
    free(pages);
    free(status);
}

static void move_to(struct region *r, long off, long n, int node, int flags, pid_t pid)
{
    void **pages = calloc(n, sizeof(void *));
    int *nodes = calloc(n, sizeof(int));
    int *status = calloc(n, sizeof(int));
    for (long i = 0; i < n; i++) {
        pages[i] = r->addr + (off + i) * page_size;
        nodes[i] = node;
    }
    long rc = syscall(SYS_move_pages, pid, n, pages, nodes, status, flags);
    report_ret("move_pages", rc, errno);
    if (rc >= 0)
        for (long i = 0; i < n; i++) {
            if (status[i] >= 0)
                out("moved region=%d index=%ld node=%d", cur, off + i, status[i]);
            else
                out("moved region=%d index=%ld err=%s", cur, off + i, errname(-status[i]));
        }
    free(pages);
    free(nodes);
    free(status);
}


/* ------------------------------------------------- processes, system state */
static int in_child;       /* >0 inside a fork block, in the child */
static char self_exe[256] = "/proc/self/exe";

/* fork: the child runs the following lines up to the matching `endfork` and
 * exits there; the parent waits for it, reports how it ended and resumes
 * after `endfork`.  Returns 1 in the parent (caller skips the block). */
static int cmd_fork(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        report_ret("fork", -1, errno);
        return 1;
    }
    if (pid == 0) {
        in_child++;
        out("fork role=child");
        return 0;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        out("child exit=%d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        out("child signal=%d", WTERMSIG(st));
    else
        out("child status=%d", st);
    return 1;
}

static void cmd_exec(const char *rest)
{
    /* replace this process by a fresh numaprobe running the ';'-separated
     * commands in REST (task policy, CPU affinity and cpuset survive exec;
     * the address space and the region table do not) */
    fflush(stdout);
    char *argv[] = {"numaprobe", "-x", "-e", (char *)rest, NULL};
    execv(self_exe, argv);
    report_ret("execv", -1, errno);
}

static void cmd_setuid(long uid)
{
    long rc = setgroups(0, NULL);
    if (rc == 0)
        rc = setgid((gid_t)uid);
    if (rc == 0)
        rc = setuid((uid_t)uid);
    report_ret("setuid", rc, errno);
}

/* kernel log lines (timestamps stripped) containing PATTERN; upto=S cuts each
 * printed line before the first S that follows the match (drops pids etc.) */
static void cmd_dmesg(char **tok, int n)
{
    if (n < 2) {
        out("error msg=usage_dmesg_PATTERN_[upto=S]");
        return;
    }
    const char *pat = tok[1], *upto = NULL;
    for (int i = 2; i < n; i++)
        if (!strncmp(tok[i], "upto=", 5))
            upto = tok[i] + 5;
    int len = klogctl(10, NULL, 0); /* SYSLOG_ACTION_SIZE_BUFFER */
    if (len <= 0)
        len = 1 << 20;
    char *b = malloc(len + 1);
    int got = klogctl(3, b, len);   /* SYSLOG_ACTION_READ_ALL */
    if (got < 0) {
        report_ret("klogctl", -1, errno);
        free(b);
        return;
    }
    b[got] = 0;
    int hits = 0;
    char *save, *line;
    for (line = strtok_r(b, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *t = line;
        if (*t == '<') {
            char *q = strchr(t, '>');
            if (q)
                t = q + 1;
        }
        if (*t == '[') {
            char *q = strchr(t, ']');
            if (q) {
                t = q + 1;
                while (*t == ' ')
                    t++;
            }
        }
        char *m = strstr(t, pat);
        if (!m)
            continue;
        if (upto) {
            char *u = strstr(m, upto);
            if (u)
                *u = 0;
        }
        size_t l = strlen(t);
        while (l && (t[l - 1] == ' ' || t[l - 1] == '\r'))
            t[--l] = 0;
        out("klog | %s", t);
        hits++;
    }
    out("dmesg pattern=%s lines=%d", pat, hits);
    free(b);
}

/* VMAs (from /proc/self/maps) overlapping the current region, in page
 * indexes relative to the region start (end exclusive) */
static void cmd_vmas(void)
{
    struct region *r = curreg();
    unsigned long rs = (unsigned long)r->addr, re = rs + r->npages * page_size;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int cnt = 0;
    if (!f) {
        out("error msg=maps errno=%s", errname(errno));
        return;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned long a, e;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &e, perms) != 3)
            continue;
        if (e <= rs || a >= re)
            continue;
        out("vma region=%d start=%ld end=%ld perms=%s", cur, ((long)a - (long)rs) / page_size,
            ((long)e - (long)rs) / page_size, perms);
        cnt++;
    }
    fclose(f);
    out("vmas region=%d count=%d", cur, cnt);
}

/* every page's first byte still holds what `touch` wrote there? */
static void cmd_verify(char **tok, int n)
{
    struct region *r = curreg();
    long off = n > 1 ? num(tok[1]) : 0, np = n > 2 ? num(tok[2]) : r->npages - off;
    if (check_range(r, off, np) < 0)
        return;
    long ok = 0, bad = 0, first = -1;
    for (long i = off; i < off + np; i++) {
        if (((volatile char *)r->addr)[i * page_size] == (char)(i | 1))
            ok++;
        else {
            bad++;
            if (first < 0)
                first = i;
        }
    }
    out("verified region=%d off=%ld n=%ld ok=%ld bad=%ld first_bad=%ld", cur, off, np, ok, bad, first);
}

static void cmd_mprotect(char **tok, int n)
{
    struct region *r = curreg();
    if (n < 4) {
        out("error msg=usage_mprotect_OFF_N_none|r|rw");
        return;
    }
    long off = num(tok[1]), np = num(tok[2]);
    int prot = !strcmp(tok[3], "none") ? PROT_NONE : !strcmp(tok[3], "r") ? PROT_READ : PROT_READ | PROT_WRITE;
    if (check_range(r, off, np) < 0)
        return;
    long rc = mprotect(r->addr + off * page_size, np * page_size, prot);
    report_ret("mprotect", rc, errno);
}

static pid_t parse_pid(const char *s)
{
    if (!strcmp(s, "parent"))
        return getppid();
    if (!strcmp(s, "self"))
        return getpid();
    return (pid_t)num(s);
}

/* ------------------------------------------------------------- commands */
static void cmd_mmap(char **tok, int n)
{
    if (n < 2) {
        out("error msg=usage_mmap_NPAGES_[anon|shared|memfd]_[at=ADDR]_[name=X]");
        return;
    }
    long np = num(tok[1]);
    int kind = 0, priv = 0, keep = 0;
    unsigned long at = 0;
    char name[32], path[256] = "";
    snprintf(name, sizeof name, "r%d", nregions);
    for (int i = 2; i < n; i++) {
        if (!strcmp(tok[i], "anon")) kind = 0;
        else if (!strcmp(tok[i], "shared")) kind = 1;
        else if (!strcmp(tok[i], "memfd")) kind = 2;
        else if (!strncmp(tok[i], "file=", 5)) { kind = 3; snprintf(path, sizeof path, "%s", tok[i] + 5); }
        else if (!strncmp(tok[i], "at=", 3)) at = strtoul(tok[i] + 3, NULL, 0);
        else if (!strncmp(tok[i], "name=", 5)) snprintf(name, sizeof name, "%s", tok[i] + 5);
        else if (!strcmp(tok[i], "private")) priv = 1;   /* file=: MAP_PRIVATE instead of MAP_SHARED */
        else if (!strcmp(tok[i], "keep")) keep = 1;      /* file=: no O_TRUNC, never shrink */
        else out("error msg=bad_mmap_arg value=%s", tok[i]);
    }
    if (kind == 3 && priv)
        kind = 4;
    if (nregions >= MAX_REGIONS) {
        out("error msg=too_many_regions");
        return;
    }
    int flags = (kind == 0 || kind == 4 ? MAP_PRIVATE : MAP_SHARED);
    int fd = -1;
    if (kind < 2)
        flags |= MAP_ANONYMOUS;
    if (at)
        flags |= MAP_FIXED_NOREPLACE;
    if (kind == 2) {
        fd = syscall(SYS_memfd_create, name, 0);
        if (fd < 0 || ftruncate(fd, np * page_size) < 0) {
            out("ret op=memfd_create rc=-1 errno=%s", errname(errno));
            return;
        }
    } else if (kind >= 3) {
        struct stat st;
        fd = open(path, O_RDWR | O_CREAT | (keep ? 0 : O_TRUNC), 0644);
        if (fd < 0 || fstat(fd, &st) < 0 ||
            ((!keep || st.st_size < np * page_size) && ftruncate(fd, np * page_size) < 0)) {
            out("ret op=open rc=-1 errno=%s path=%s", errname(errno), path);
            return;
        }
    }
    void *p = mmap((void *)at, np * page_size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        out("ret op=mmap rc=-1 errno=%s", errname(errno));
        return;
    }
    struct region *r = &regions[nregions];
    r->addr = p;
    r->npages = np;
    r->kind = kind;
    r->fd = fd;
    r->live = 1;
    snprintf(r->name, sizeof r->name, "%s", name);
    cur = nregions++;
    /* vpn = virtual page number; the kernel's offset-based interleave for a
     * private anonymous VMA uses vm_pgoff = vpn of the VMA start, for shmem the
     * file page index (0 at region start). */
    out("region id=%d name=%s kind=%s addr=%p pages=%ld vpn=%lu pgoff0=%lu",
        cur, r->name, kind == 0 ? "anon" : kind == 1 ? "shared" : kind == 2 ? "memfd" : kind == 3 ? "file" : "fileprivate", p, np,
        (unsigned long)p / page_size, kind == 0 ? (unsigned long)p / page_size : 0UL);
}

static void cmd_fill(char **tok, int n)
{
    /* fill NODE LEFT : bind a hog region to NODE and touch pages until the
     * node's headroom above the low watermark is <= LEFT pages */
    if (n < 3) {
        out("error msg=usage_fill_NODE_LEFT");
        return;
    }
    int node = (int)num(tok[1]);
    long left = num(tok[2]);
    int verbose = 0;
    const char *zone = NULL;   /* zone=NAME: watch only that zone of the node */
    for (int i = 3; i < n; i++) {
        if (!strcmp(tok[i], "verbose")) verbose = 1;
        else if (!strncmp(tok[i], "zone=", 5)) zone = tok[i] + 5;
        else out("error msg=bad_fill_arg value=%s", tok[i]);
    }
    long h0 = node_headroom_zone(node, zone);
    long cap = h0 + 4096;
    char *hog = mmap(NULL, cap * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (hog == MAP_FAILED) {
        out("ret op=fill_mmap rc=-1 errno=%s", errname(errno));
        return;
    }
    unsigned long m[MASK_LONGS];
    mask_clear(m);
    mask_set(m, node);
    long rc = syscall(SYS_mbind, hog, cap * page_size, P_MPOL_BIND, m, DEFAULT_MAXNODE, 0);
    if (rc < 0) {
        report_ret("fill_mbind", rc, errno);
        return;
    }
    long used = 0, h = h0;
    int iter = 0;
    while (h > left && used < cap && iter < 100000) {
        /* approach gradually: the buddy free count moves in per-cpu-list
         * refill batches (up to a few hundred pages), not page by page */
        long step = h - left;
        if (step > 2048) step = step / 2;
        else if (step > 16) step = 16;
        if (step < 1) step = 1;
        if (used + step > cap) step = cap - used;
        for (long i = 0; i < step; i++)
            hog[(used + i) * page_size] = 1;
        used += step;
        h = node_headroom_zone(node, zone);
        iter++;
        if (verbose)
            out("fill_step node=%d touched=%ld total=%ld headroom=%ld", node, step, used, h);
    }
    if (zone)
        out("fill node=%d zone=%s left_target=%ld hog_pages=%ld headroom_before=%ld headroom_after=%ld iterations=%d",
            node, zone, left, used, h0, h, iter);
    else
        out("fill node=%d left_target=%ld hog_pages=%ld headroom_before=%ld headroom_after=%ld iterations=%d",
            node, left, used, h0, h, iter);
}

static void cmd_get_mempolicy(char **tok, int n)
{
    int flags = 0;
    long off = -1;
    unsigned long maxnode = DEFAULT_MAXNODE;
    int nomask = 0, raw = 0;
    unsigned long rawaddr = 0;
    for (int i = 1; i < n; i++) {
        if (!strncmp(tok[i], "addr=", 5)) { off = num(tok[i] + 5); flags |= P_MPOL_F_ADDR; }
        else if (!strncmp(tok[i], "rawaddr=", 8)) { rawaddr = parse_addr(tok[i] + 8); raw = 1; flags |= P_MPOL_F_ADDR; }
        else if (!strcmp(tok[i], "addr") && i + 1 < n) { off = num(tok[++i]); flags |= P_MPOL_F_ADDR; }
        else if (!strcmp(tok[i], "node")) flags |= P_MPOL_F_NODE;
        else if (!strcmp(tok[i], "mems_allowed")) flags |= P_MPOL_F_MEMS_ALLOWED;
        else if (!strncmp(tok[i], "maxnode=", 8)) maxnode = strtoul(tok[i] + 8, NULL, 0);
        else if (!strcmp(tok[i], "nomask")) nomask = 1;
        else if (!strncmp(tok[i], "flags=", 6)) flags = (int)strtol(tok[i] + 6, NULL, 0);
        else out("error msg=bad_get_mempolicy_arg value=%s", tok[i]);
    }
    void *addr = NULL;
    if (off >= 0) {
        struct region *r = curreg();
        addr = r->addr + off * page_size;
    }
    if (raw)
        addr = (void *)rawaddr;
    int mode = -777;
    unsigned long m[MASK_LONGS];
    mask_clear(m);
    long rc = syscall(SYS_get_mempolicy, &mode, nomask ? NULL : m, nomask ? 0 : maxnode, addr, flags);
    int e = errno;
    char where[64] = "task";
    if (off >= 0)
        snprintf(where, sizeof where, "region%d:%ld", cur, off);
    if (raw)
        snprintf(where, sizeof where, "raw:%#lx", rawaddr);
    if (rc < 0) {
        out("policy query=%s flags=%d rc=%ld errno=%s", where, flags, rc, errname(e));
        return;
    }
    if (flags & P_MPOL_F_NODE)
        out("policy query=%s flags=%d node=%d", where, flags, mode);
    else if (flags & P_MPOL_F_MEMS_ALLOWED)
        out("policy query=%s flags=%d mems_allowed=%s", where, flags, mask_str(m, MASK_BITS));
    else
        out("policy query=%s flags=%d mode=%s mode_flags=%s raw=%d nodes=%s", where, flags,
            mode_str(mode), modeflags_str(mode), mode, nomask ? "?" : mask_str(m, MASK_BITS));
}

static void cmd_numa_maps(void)
{
    FILE *f = fopen("/proc/self/numa_maps", "r");
    char line[2048];
    if (!f) {
        out("error msg=numa_maps errno=%s", errname(errno));
        return;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned long a = strtoul(line, NULL, 16);
        line[strcspn(line, "\n")] = 0;
        for (int i = 0; i < nregions; i++) {
            if (!regions[i].live)
                continue;
            unsigned long s = (unsigned long)regions[i].addr, e = s + regions[i].npages * page_size;
            if (a >= s && a < e) {
                out("numa_maps region=%d page=%lu | %s", i, (a - s) / page_size, line);
                break;
            }
        }
    }
    fclose(f);
}

/* returns 1 when the caller must skip to the matching `endfork` (parent
 * side of a fork block), else 0 */
static int run_line(char *raw)
{
    char buf[2048], rest[2048];
    char *tok[MAXTOK];
    snprintf(buf, sizeof buf, "%s", raw);
    char *hash = strchr(buf, '#');
    if (hash)
        *hash = 0;
    {
        /* text after the first word (for `exec`) */
        char *q = buf;
        while (*q == ' ' || *q == '\t')
            q++;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        while (*q == ' ' || *q == '\t')
            q++;
        snprintf(rest, sizeof rest, "%s", q);
    }
    int n = tokenize(buf, tok);
    if (n == 0)
        return 0;
    {
        char echo[2048], *p = echo;
        for (int i = 0; i < n; i++)
            p += sprintf(p, "%s%s", i ? " " : "", tok[i]);
        out("> %s", echo);
    }
    const char *c = tok[0];
    struct polargs pa;

    if (!strcmp(c, "fork"))
        return cmd_fork();
    if (!strcmp(c, "endfork")) {
        if (!in_child) {
            out("error msg=endfork_outside_child");
            return 0;
        }
        fflush(stdout);
        _exit(0);
    }

    if (!strcmp(c, "cpu")) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)num(tok[1]), &set);
        long rc = sched_setaffinity(0, sizeof set, &set);
        report_ret("sched_setaffinity", rc, errno);
        do_getcpu();
    } else if (!strcmp(c, "getcpu")) {
        do_getcpu();
    } else if (!strcmp(c, "set_mempolicy")) {
        if (parse_polargs(tok + 1, n - 1, &pa) < 0)
            return 0;
        long rc = syscall(SYS_set_mempolicy, pa.mode, pol_maskptr(&pa), pa.maxnode);
        report_ret("set_mempolicy", rc, errno);
    } else if (!strcmp(c, "mmap")) {
        cmd_mmap(tok, n);
    } else if (!strcmp(c, "region")) {
        int id = (int)num(tok[1]);
        if (id < 0 || id >= nregions || !regions[id].live)
            out("error msg=no_such_region id=%d", id);
        else
            cur = id;
    } else if (!strcmp(c, "munmap")) {
        struct region *r = curreg();
        long rc = munmap(r->addr, r->npages * page_size);
        report_ret("munmap", rc, errno);
        r->live = 0;
        if (r->fd >= 0) {   /* the region is gone: let its file/mount go too */
            close(r->fd);
            r->fd = -1;
        }
    } else if (!strcmp(c, "mbind")) {
        if (n < 4) {
            out("error msg=usage_mbind_OFF_NPAGES_MODE_[NODES]_[flags]");
            return 0;
        }
        struct region *r = curreg();
        long off = num(tok[1]), np = num(tok[2]);
        if (parse_polargs(tok + 3, n - 3, &pa) < 0)
            return 0;
        long rc = syscall(SYS_mbind, r->addr + off * page_size, np * page_size, pa.mode,
                          pol_maskptr(&pa), pa.maxnode, pol_mflags(&pa));
        report_ret("mbind", rc, errno);
    } else if (!strcmp(c, "mbind_raw")) {
        /* mbind_raw ADDR LEN MODE ... : ADDR absolute or +BYTES from the region start, LEN in bytes */
        if (n < 4) {
            out("error msg=usage_mbind_raw_ADDR_LEN_MODE_[NODES]_[flags]");
            return 0;
        }
        unsigned long a = parse_addr(tok[1]), len = strtoul(tok[2], NULL, 0);
        if (parse_polargs(tok + 3, n - 3, &pa) < 0)
            return 0;
        long rc = syscall(SYS_mbind, a, len, pa.mode, pol_maskptr(&pa), pa.maxnode, pol_mflags(&pa));
        report_ret("mbind", rc, errno);
    } else if (!strcmp(c, "home_node") || !strcmp(c, "home_node_raw")) {
        /* home_node OFF N NODE [flags=F]; home_node_raw ADDR LEN NODE [flags=F] */
        if (n < 4) {
            out("error msg=usage_home_node_OFF_N_NODE_[flags=F]");
            return 0;
        }
        unsigned long a, len, fl = 0;
        if (!strcmp(c, "home_node")) {
            struct region *r = curreg();
            a = (unsigned long)(r->addr + num(tok[1]) * page_size);
            len = num(tok[2]) * page_size;
        } else {
            a = parse_addr(tok[1]);
            len = strtoul(tok[2], NULL, 0);
        }
        for (int i = 4; i < n; i++)
            if (!strncmp(tok[i], "flags=", 6))
                fl = strtoul(tok[i] + 6, NULL, 0);
        long rc = syscall(SYS_set_mempolicy_home_node, a, len, num(tok[3]), fl);
        report_ret("set_mempolicy_home_node", rc, errno);
    } else if (!strcmp(c, "touch")) {
        struct region *r = curreg();
        long off = n > 1 ? num(tok[1]) : 0, np = n > 2 ? num(tok[2]) : r->npages - off;
        int rd = n > 3 && !strcmp(tok[3], "read");
        if (check_range(r, off, np) < 0)
            return 0;
        if (n > 3 && !strcmp(tok[3], "resident")) {
            /* read only the pages mincore() reports resident (e.g. shmem pages
             * another process wrote): maps them without allocating holes */
            unsigned char *vec = calloc(np, 1);
            long cnt = 0;
            long rc = mincore(r->addr + off * page_size, np * page_size, vec);
            if (rc < 0) {
                report_ret("mincore", rc, errno);
                free(vec);
                return 0;
            }
            volatile char s2 = 0;
            for (long i = 0; i < np; i++)
                if (vec[i] & 1) {
                    s2 += ((volatile char *)r->addr)[(off + i) * page_size];
                    cnt++;
                }
            (void)s2;
            free(vec);
            (void)cnt;   /* the count is in a later query's summary; keep this line stable */
            out("touched region=%d off=%ld n=%ld mode=resident", cur, off, np);
            return 0;
        }
        volatile char sink = 0;
        for (long i = off; i < off + np; i++) {
            if (rd)
                sink += ((volatile char *)r->addr)[i * page_size];
            else
                ((volatile char *)r->addr)[i * page_size] = (char)(i | 1);
        }
        (void)sink;
        out("touched region=%d off=%ld n=%ld mode=%s", cur, off, np, rd ? "read" : "write");
    } else if (!strcmp(c, "pwrite")) {
        /* fill file pages through write(2) (page cache allocated without a VMA) */
        struct region *r = curreg();
        long off = num(tok[1]), np = num(tok[2]);
        if (check_range(r, off, np) < 0)
            return 0;
        if (r->fd < 0) {
            out("error msg=pwrite_needs_memfd_or_file_region");
            return 0;
        }
        static char pagebuf[65536];
        memset(pagebuf, 0x5a, sizeof pagebuf);
        long done = 0;
        for (long i = off; i < off + np; i++) {
            long rc = pwrite(r->fd, pagebuf, page_size, i * page_size);
            if (rc != page_size) {
                out("ret op=pwrite rc=%ld errno=%s index=%ld", rc, errname(errno), i);
                break;
            }
            done++;
        }
        out("pwritten region=%d off=%ld n=%ld", cur, off, done);
    } else if (!strcmp(c, "query")) {
        struct region *r = curreg();
        long off = n > 1 ? num(tok[1]) : 0, np = n > 2 ? num(tok[2]) : r->npages - off;
        if (check_range(r, off, np) < 0)
            return 0;
        query_pages(r, off, np, "page", n > 3 && !strcmp(tok[3], "brief") ? 1 : n > 3 && !strcmp(tok[3], "counts") ? 2 : 0);
    } else if (!strcmp(c, "nodeof")) {
        struct region *r = curreg();
        long off = num(tok[1]), np = n > 2 ? num(tok[2]) : 1;
        if (check_range(r, off, np) < 0)
            return 0;
        for (long i = off; i < off + np; i++) {
            int node = -1;
            long rc = syscall(SYS_get_mempolicy, &node, NULL, 0, r->addr + i * page_size,
                              P_MPOL_F_NODE | P_MPOL_F_ADDR);
            if (rc < 0)
                out("nodeof region=%d index=%ld errno=%s", cur, i, errname(errno));
            else
                out("nodeof region=%d index=%ld node=%d", cur, i, node);
        }
    } else if (!strcmp(c, "move")) {
        struct region *r = curreg();
        long off = num(tok[1]), np = num(tok[2]);
        int node = (int)num(tok[3]);
        int fl = P_MPOL_MF_MOVE;
        pid_t pid = 0;
        for (int i = 4; i < n; i++) {
            if (!strcmp(tok[i], "move_all")) fl = P_MPOL_MF_MOVE_ALL;
            else if (!strncmp(tok[i], "pid=", 4)) pid = parse_pid(tok[i] + 4);
            else if (!strncmp(tok[i], "flags=", 6)) fl = (int)strtol(tok[i] + 6, NULL, 0);
            else out("error msg=bad_move_arg value=%s", tok[i]);
        }
        if (check_range(r, off, np) < 0)
            return 0;
        move_to(r, off, np, node, fl, pid);
    } else if (!strcmp(c, "migrate")) {
        /* migrate FROM TO [pid=P|parent] [maxnode=N] [old=ADDR] [new=ADDR] */
        unsigned long from[MASK_LONGS], to[MASK_LONGS];
        if (n < 3 || parse_mask(tok[1], from) || parse_mask(tok[2], to)) {
            out("error msg=usage_migrate_FROM_TO");
            return 0;
        }
        pid_t pid = 0;
        unsigned long maxnode = DEFAULT_MAXNODE;
        void *op = from, *np = to;
        for (int i = 3; i < n; i++) {
            if (!strncmp(tok[i], "pid=", 4)) pid = parse_pid(tok[i] + 4);
            else if (!strncmp(tok[i], "maxnode=", 8)) maxnode = strtoul(tok[i] + 8, NULL, 0);
            else if (!strncmp(tok[i], "old=", 4)) op = (void *)parse_addr(tok[i] + 4);
            else if (!strncmp(tok[i], "new=", 4)) np = (void *)parse_addr(tok[i] + 4);
            else out("error msg=bad_migrate_arg value=%s", tok[i]);
        }
        long rc = syscall(SYS_migrate_pages, pid, maxnode, op, np);
        report_ret("migrate_pages", rc, errno);
    } else if (!strcmp(c, "get_mempolicy")) {
        cmd_get_mempolicy(tok, n);
    } else if (!strcmp(c, "numa_maps")) {
        cmd_numa_maps();
    } else if (!strcmp(c, "numastat")) {
        do_numastat(0);
    } else if (!strcmp(c, "numastat_mark")) {
        do_numastat(1);
    } else if (!strcmp(c, "numastat_delta")) {
        if (!stat_marked)
            out("error msg=numastat_delta_without_mark");
        do_numastat(2);
    } else if (!strcmp(c, "meminfo")) {
        do_meminfo();
    } else if (!strcmp(c, "zones")) {
        do_zones();
    } else if (!strcmp(c, "headroom")) {
        int node = (int)num(tok[1]);
        out("headroom node=%d pages=%ld", node, node_headroom(node));
    } else if (!strcmp(c, "fill")) {
        cmd_fill(tok, n);
    } else if (!strcmp(c, "spin")) {
        /* spin OFF N MS [read|write]: keep reading (default) or writing one byte of
         * each page of OFF..OFF+N-1, in order, until MS milliseconds of CLOCK_MONOTONIC
         * have passed -- a task that keeps using its memory, so that NUMA balancing
         * (scanner, hinting faults, migration) can act on it.  The number of passes
         * depends on the machine's speed and is not printed. */
        struct region *r = curreg();
        if (n < 4) {
            out("error msg=usage_spin_OFF_N_MS");
            return 0;
        }
        long off = num(tok[1]), np = num(tok[2]), ms = num(tok[3]);
        int wr = n > 4 && !strcmp(tok[4], "write");
        if (check_range(r, off, np) < 0)
            return 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        volatile char sink = 0;
        for (;;) {
            for (long i = off; i < off + np; i++) {
                if (wr)
                    ((volatile char *)r->addr)[i * page_size] = (char)(i | 1);
                else
                    sink += ((volatile char *)r->addr)[i * page_size];
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L >= ms)
                break;
        }
        (void)sink;
        out("spun region=%d off=%ld n=%ld ms=%ld mode=%s", cur, off, np, ms, wr ? "write" : "read");
    } else if (!strcmp(c, "madvise")) {
        /* madvise OFF N hugepage|nohugepage|pageout|cold
           (pageout = MADV_PAGEOUT 21, cold = MADV_COLD 20, Linux >= 5.4: reclaim / deactivate
           the range now; with a swap device, private anonymous and shmem pages go to swap) */
        struct region *r = curreg();
        if (n < 4) {
            out("error msg=usage_madvise_OFF_N_hugepage|nohugepage|pageout|cold");
            return 0;
        }
        long off = num(tok[1]), np = num(tok[2]);
        int adv = !strcmp(tok[3], "hugepage") ? MADV_HUGEPAGE
                : !strcmp(tok[3], "nohugepage") ? MADV_NOHUGEPAGE
                : !strcmp(tok[3], "pageout") ? 21 /* MADV_PAGEOUT */
                : !strcmp(tok[3], "cold") ? 20 /* MADV_COLD */ : -1;
        if (adv < 0) {
            out("error msg=usage_madvise_OFF_N_hugepage|nohugepage|pageout|cold");
            return 0;
        }
        if (check_range(r, off, np) < 0)
            return 0;
        long rc = madvise(r->addr + off * page_size, np * page_size, adv);
        report_ret("madvise", rc, errno);
    } else if (!strcmp(c, "vmstat")) {
        do_vmstat(tok + 1, n - 1, 0);
    } else if (!strcmp(c, "vmstat_mark")) {
        do_vmstat(tok + 1, n - 1, 1);
    } else if (!strcmp(c, "vmstat_delta")) {
        if (!vm_nmark)
            out("error msg=vmstat_delta_without_mark");
        do_vmstat(tok + 1, n - 1, 2);
    } else if (!strcmp(c, "cat")) {
        do_cat(tok[1]);
    } else if (!strcmp(c, "write")) {
        if (n < 3)
            out("error msg=usage_write_PATH_VALUE");
        else
            do_write(tok[1], tok[2]);
    } else if (!strcmp(c, "echo")) {
        /* nothing: the echo line above is the output */
    } else if (!strcmp(c, "sleep")) {
        struct timespec ts = {num(tok[1]) / 1000, (num(tok[1]) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    } else if (!strcmp(c, "exit")) {
        exit(0);
    } else if (!strcmp(c, "exec")) {
        cmd_exec(rest);
    } else if (!strcmp(c, "setuid")) {
        cmd_setuid(num(tok[1]));
    } else if (!strcmp(c, "mkdir")) {
        report_ret("mkdir", mkdir(tok[1], 0755), errno);
    } else if (!strcmp(c, "rmdir")) {
        report_ret("rmdir", rmdir(tok[1]), errno);
    } else if (!strcmp(c, "mount")) {
        /* mount FSTYPE TARGET [DATA] */
        if (n < 3)
            out("error msg=usage_mount_FSTYPE_TARGET_[DATA]");
        else
            report_ret("mount", mount(tok[1], tok[2], tok[1], 0, n > 3 ? tok[3] : NULL), errno);
    } else if (!strcmp(c, "unlink")) {
        report_ret("unlink", unlink(tok[1]), errno);
    } else if (!strcmp(c, "umount")) {
        report_ret("umount", umount(tok[1]), errno);
    } else if (!strcmp(c, "dmesg")) {
        cmd_dmesg(tok, n);
    } else if (!strcmp(c, "vmas")) {
        cmd_vmas();
    } else if (!strcmp(c, "verify")) {
        cmd_verify(tok, n);
    } else if (!strcmp(c, "mprotect")) {
        cmd_mprotect(tok, n);
    } else if (!strcmp(c, "unmap")) {
        /* unmap OFF N: munmap part of the current region (the region stays selected) */
        struct region *r = curreg();
        long off = num(tok[1]), np = num(tok[2]);
        if (check_range(r, off, np) < 0)
            return 0;
        report_ret("munmap", munmap(r->addr + off * page_size, np * page_size), errno);
    } else {
        out("error msg=unknown_command value=%s", c);
    }
    return 0;
}

/* first word of a script line (comments stripped) */
static void first_word(const char *line, char *w, size_t wsz)
{
    const char *p = line;
    size_t i = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ' ' && *p != '\t' && *p != '#' && *p != '\r' && i + 1 < wsz)
        w[i++] = *p++;
    w[i] = 0;
}

static void run_lines(char **lines, int nl)
{
    for (int i = 0; i < nl; i++) {
        if (run_line(lines[i]) != 1)
            continue;
        /* parent of a fork block: skip to the matching endfork */
        int depth = 1;
        char w[32];
        while (depth > 0 && ++i < nl) {
            first_word(lines[i], w, sizeof w);
            if (!strcmp(w, "fork"))
                depth++;
            else if (!strcmp(w, "endfork"))
                depth--;
        }
    }
}

int main(int argc, char **argv)
{
    page_size = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOLBF, 0);
    static char *lines[4096];
    int nl = 0;
    int keep_affinity = 0;
    if (argc > 1 && !strcmp(argv[1], "-x")) {   /* started by `exec`: keep the inherited CPU affinity */
        keep_affinity = 1;
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT | -e 'cmd; cmd'\n", argv[0]);
        return 2;
    }
    /* pin to CPU 0 unless the script says otherwise: makes local allocation deterministic */
    if (!keep_affinity) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    if (!strcmp(argv[1], "-e")) {
        for (int i = 2; i < argc; i++) {
            char *save, *s;
            for (s = strtok_r(argv[i], ";", &save); s && nl < 4096; s = strtok_r(NULL, ";", &save))
                lines[nl++] = s;
        }
        run_lines(lines, nl);
        return 0;
    }
    FILE *f = strcmp(argv[1], "-") ? fopen(argv[1], "r") : stdin;
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    /* read the whole script first so that reading it does not allocate mid-scenario */
    static char script[1 << 16];
    size_t len = fread(script, 1, sizeof script - 1, f);
    script[len] = 0;
    char *save, *s;
    for (s = strtok_r(script, "\n", &save); s && nl < 4096; s = strtok_r(NULL, "\n", &save))
        lines[nl++] = s;
    run_lines(lines, nl);
    return 0;
}
