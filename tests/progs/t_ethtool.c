/* SIOCETHTOOL on lo, as Linux answers it: no link settings or driver
   information (EOPNOTSUPP: tools such as psutil's net_if_stats read
   "speed and duplex unknown"), a link that is up, software time stamps;
   setters need CAP_NET_ADMIN (EPERM for a user, EOPNOTSUPP for root
   here), an unknown device is ENODEV, an unreadable buffer EFAULT.
   Deterministic output (run as root, then as uid 1000). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int s;

static const char *try(const char *dev, void *data)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, dev);
    ifr.ifr_data = data;
    return ioctl(s, SIOCETHTOOL, &ifr) ? strerrorname_np(errno) : "ok";
}

static void all(void)
{
    struct ethtool_cmd ec = {.cmd = ETHTOOL_GSET};
    printf("GSET %s\n", try("lo", &ec));
    struct ethtool_link_settings ls = {.cmd = ETHTOOL_GLINKSETTINGS};
    printf("GLINKSETTINGS %s\n", try("lo", &ls));
    struct ethtool_value v = {.cmd = ETHTOOL_GLINK};
    const char *r = try("lo", &v);
    printf("GLINK %s %u\n", r, v.data);
    struct ethtool_drvinfo di = {.cmd = ETHTOOL_GDRVINFO};
    printf("GDRVINFO %s\n", try("lo", &di));
    struct ethtool_ts_info ts = {.cmd = ETHTOOL_GET_TS_INFO};
    r = try("lo", &ts);
    printf("GET_TS_INFO %s %#x %d\n", r, ts.so_timestamping, ts.phc_index);
    struct ethtool_value w = {.cmd = ETHTOOL_SMSGLVL, .data = 1};
    printf("SMSGLVL %s\n", try("lo", &w));
    struct ethtool_value g = {.cmd = ETHTOOL_GMSGLVL};
    printf("GMSGLVL %s\n", try("lo", &g));
    printf("no such device %s\n", try("nosuch0", &v));
    printf("bad pointer %s\n", try("lo", (void *)8));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    all();
    if (getuid() == 0 && setuid(1000) == 0) {
        printf("as uid 1000:\n");
        all();
    }
    printf("done\n");
    return 0;
}
