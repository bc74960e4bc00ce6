/**
 * What an XDP program sees of the kernel (include/uapi/linux/bpf.h): its actions, the fields of
 * its context, and the flags of the helpers it calls. Pure numbers, for programs built with
 * EbpfAssembler.
 */

/** enum xdp_action: what becomes of the frame, returned in r0. */
export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const XDP_REDIRECT = 4;

/**
 * struct xdp_md, the context in r1 (u32 fields). data and data_end load as packet pointers: the
 * verifier lets a program read packet bytes only below data_end, after it has compared them.
 */
export const XDP_MD_DATA = 0;
export const XDP_MD_DATA_END = 4;
export const XDP_MD_DATA_META = 8;
export const XDP_MD_INGRESS_IFINDEX = 12;
export const XDP_MD_RX_QUEUE_INDEX = 16;
/** Only in devmap entry programs (expected attach type BPF_XDP_DEVMAP). */
export const XDP_MD_EGRESS_IFINDEX = 20;

/** bpf_redirect_map flags: every entry of the devmap gets a copy, except the input interface. */
export const BPF_F_BROADCAST = 1 << 3;
export const BPF_F_EXCLUDE_INGRESS = 1 << 4;

/** bpf_map_update_elem flags (also the update flags of bpf(2)). */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
