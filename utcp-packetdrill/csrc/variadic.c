/*
 * The variadic entry points of packetdrill's interface: fcntl(userdata, fd,
 * cmd, ...) and ioctl(userdata, fd, request, ...). Stable Rust cannot define
 * C-variadic functions, so these forward to fixed-arity Rust functions.
 */
#include <fcntl.h>
#include <stdarg.h>

int utcp_pd_fcntl_impl(void *userdata, int fd, int cmd, unsigned long arg);
int utcp_pd_ioctl_impl(void *userdata, int fd, unsigned long request, void *arg);

int utcp_pd_fcntl(void *userdata, int fd, int cmd, ...)
{
	unsigned long arg = 0;

	/* Only read the third argument for commands that take one. */
	switch (cmd) {
	case F_GETFL:
	case F_GETFD:
	case F_GETOWN:
		break;
	default: {
		va_list ap;

		va_start(ap, cmd);
		arg = va_arg(ap, unsigned long);
		va_end(ap);
		break;
	}
	}
	return utcp_pd_fcntl_impl(userdata, fd, cmd, arg);
}

int utcp_pd_ioctl(void *userdata, int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	/* Every ioctl packetdrill issues on a socket passes a pointer. */
	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return utcp_pd_ioctl_impl(userdata, fd, request, arg);
}
