/* Allowed client networks (CIDR, IPv4 and IPv6). An IPv4 client seen on
 * an IPv6 socket (::ffff:a.b.c.d) matches IPv4 networks. */
#include "serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int serve_net_parse(const char *text, struct serve_net *out)
{
	memset(out, 0, sizeof *out);
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	if (alen == 0 || alen >= 64)
		return -1;
	char a[64];
	memcpy(a, text, alen);
	a[alen] = '\0';
	unsigned max;
	if (inet_pton(AF_INET, a, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash) {
		char *end;
		long p = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || p < 0 || p > (long)max)
			return -1;
		out->prefix = (unsigned)p;
	}
	return 0;
}

static int match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, full) != 0)
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

int serve_net_allowed(const struct serve_net *nets, size_t n, const struct sockaddr *sa)
{
	if (!nets)
		return 1;
	unsigned char a[16];
	int fam = sa->sa_family;
	if (fam == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (fam == AF_INET6) {
		const struct in6_addr *x =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(x)) {
			fam = AF_INET;
			memcpy(a, x->s6_addr + 12, 4);
		} else {
			memcpy(a, x->s6_addr, 16);
		}
	} else {
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (nets[i].family == fam && match(a, nets[i].addr, nets[i].prefix))
			return 1;
	return 0;
}
