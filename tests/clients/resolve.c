/*
 * resolve NAME: the addresses getaddrinfo(3) finds for NAME (AF_UNSPEC, SOCK_STREAM), one a
 * line, each once, in the order the C library returns them.
 *
 * Exit 0 when it finds some; 2 when getaddrinfo fails, with "resolve: NAME: <gai_strerror>
 * (<EAI_ name>)" on stderr; 3 on any other error (usage, memory). tests/clients.rs builds it
 * against glibc (cc) and musl (musl-gcc -static) to show what real client libraries make of
 * etcd-dns answers.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The symbolic name of a getaddrinfo error, the same under every libc. */
static const char *eai_name(int rc)
{
	switch (rc) {
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	default: return "EAI_other";
	}
}

int main(int argc, char **argv)
{
	struct addrinfo hints, *list, *ai;
	char **seen;
	size_t nseen = 0, count = 0, i;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: resolve NAME\n");
		return 3;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(argv[1], NULL, &hints, &list);
	if (rc != 0) {
		fprintf(stderr, "resolve: %s: %s (%s)\n", argv[1], gai_strerror(rc), eai_name(rc));
		return 2;
	}
	for (ai = list; ai; ai = ai->ai_next)
		count++;
	seen = calloc(count ? count : 1, sizeof *seen);
	if (!seen) {
		perror("resolve: calloc");
		return 3;
	}
	for (ai = list; ai; ai = ai->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const void *addr;
		int dup = 0;

		if (ai->ai_family == AF_INET)
			addr = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			addr = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (!inet_ntop(ai->ai_family, addr, text, sizeof text))
			continue;
		for (i = 0; i < nseen && !dup; i++)
			dup = strcmp(seen[i], text) == 0;
		if (dup)
			continue;
		seen[nseen] = strdup(text);
		if (!seen[nseen]) {
			perror("resolve: strdup");
			return 3;
		}
		nseen++;
		puts(text);
	}
	freeaddrinfo(list);
	return 0;
}
