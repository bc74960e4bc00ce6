// Linux ABI numbers (x86-64 and every other Linux architecture Node runs on agree on these).

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_PACKET = 17;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_BINDTODEVICE = 25;
export const SO_ATTACH_FILTER = 26;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SCM_RIGHTS = 1;

export const IPPROTO_IP = 0;
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36;
export const IP_MULTICAST_ALL = 49;
export const MCAST_JOIN_SOURCE_GROUP = 46;
export const MCAST_LEAVE_SOURCE_GROUP = 47;

export const SOL_PACKET = 263;
export const PACKET_RX_RING = 5;
export const PACKET_STATISTICS = 6;
export const PACKET_VERSION = 10;
export const PACKET_TX_RING = 13;
export const PACKET_LOSS = 14;
export const PACKET_IGNORE_OUTGOING = 23;
export const TPACKET_V2 = 1;

export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;

export const MSG_DONTWAIT = 0x40;
export const MSG_CTRUNC = 0x08;
export const MSG_TRUNC = 0x20;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;

export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_NONBLOCK = 0o4000;

export const SIOCGIFFLAGS = 0x8913;
export const SIOCGIFADDR = 0x8915;
export const SIOCGIFMTU = 0x8921;
export const SIOCGIFHWADDR = 0x8927;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLLIN = 0x001;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;

export const EAGAIN = 11;
export const EINTR = 4;
export const EBUSY = 16;
export const ENOENT = 2;
export const ENODEV = 19;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;

export const PACKET_FANOUT = 18;
export const PACKET_FANOUT_HASH = 0;
export const PACKET_FANOUT_CPU = 2;
export const PACKET_FANOUT_FLAG_UNIQUEID = 0x2000;
export const PACKET_VNET_HDR = 15;
export const PACKET_QDISC_BYPASS = 20;
