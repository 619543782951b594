/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trace events of Heterogeneous Memory Management (mm/hmm.c): page table
 * walks on behalf of a device and the invalidations forwarded to mirrors.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hmm

#if !defined(_TRACE_HMM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_HMM_H

#include <linux/hmm.h>
#include <linux/tracepoint.h>

#ifndef HMM_TRACE_KINDS_DEFINED
#define HMM_TRACE_KINDS_DEFINED
/* What started a walk; the "kind" field of hmm_walk_start/end. */
#define HMM_TRACE_SNAPSHOT		0	/* hmm_vma_get_pfns() */
#define HMM_TRACE_FAULT			1	/* hmm_vma_fault(, true) */
#define HMM_TRACE_FAULT_UNLOCKABLE	2	/* hmm_vma_fault(, false) */
#define HMM_TRACE_RANGE_FAULT		3	/* hmm_range_fault() */
#endif

#define hmm_trace_kind_name(kind)					\
	__print_symbolic(kind,						\
			 { HMM_TRACE_SNAPSHOT, "snapshot" },		\
			 { HMM_TRACE_FAULT, "fault" },			\
			 { HMM_TRACE_FAULT_UNLOCKABLE, "fault_unlockable" }, \
			 { HMM_TRACE_RANGE_FAULT, "range_fault" })

TRACE_DEFINE_ENUM(HMM_UPDATE_INVALIDATE);
TRACE_DEFINE_ENUM(HMM_UPDATE_UNMAP);
TRACE_DEFINE_ENUM(HMM_UPDATE_CLEAR);
TRACE_DEFINE_ENUM(HMM_UPDATE_PROTECTION);
TRACE_DEFINE_ENUM(HMM_UPDATE_SOFT_DIRTY);
TRACE_DEFINE_ENUM(HMM_UPDATE_RELEASE);
TRACE_DEFINE_ENUM(HMM_UPDATE_MIGRATE);
TRACE_DEFINE_ENUM(HMM_UPDATE_EXCLUSIVE);

#define hmm_trace_event_name(event)					\
	__print_symbolic(event,						\
			 { HMM_UPDATE_INVALIDATE, "invalidate" },	\
			 { HMM_UPDATE_UNMAP, "unmap" },			\
			 { HMM_UPDATE_CLEAR, "clear" },			\
			 { HMM_UPDATE_PROTECTION, "protection" },	\
			 { HMM_UPDATE_SOFT_DIRTY, "soft_dirty" },	\
			 { HMM_UPDATE_RELEASE, "release" },		\
			 { HMM_UPDATE_MIGRATE, "migrate" },		\
			 { HMM_UPDATE_EXCLUSIVE, "exclusive" })

TRACE_EVENT(hmm_walk_start,
	    TP_PROTO(struct mm_struct *mm, unsigned long start, unsigned long end,
		     unsigned int kind),

	    TP_ARGS(mm, start, end, kind),

	    TP_STRUCT__entry(__field(struct mm_struct *, mm)
			     __field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned int, kind)
	    ),

	    TP_fast_assign(__entry->mm = mm;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->kind = kind;
	    ),

	    TP_printk("mm=%p %s start=0x%lx end=0x%lx pages=%lu",
		      __entry->mm, hmm_trace_kind_name(__entry->kind),
		      __entry->start, __entry->end,
		      (__entry->end - __entry->start) >> PAGE_SHIFT)
);

TRACE_EVENT(hmm_walk_end,
	    TP_PROTO(struct mm_struct *mm, unsigned long start, unsigned long end,
		     unsigned int kind, int ret, unsigned int retries,
		     unsigned int faults),

	    TP_ARGS(mm, start, end, kind, ret, retries, faults),

	    TP_STRUCT__entry(__field(struct mm_struct *, mm)
			     __field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned int, kind)
			     __field(int, ret)
			     __field(unsigned int, retries)
			     __field(unsigned int, faults)
	    ),

	    TP_fast_assign(__entry->mm = mm;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->kind = kind;
			   __entry->ret = ret;
			   __entry->retries = retries;
			   __entry->faults = faults;
	    ),

	    TP_printk("mm=%p %s start=0x%lx end=0x%lx pages=%lu ret=%d retries=%u faults=%u",
		      __entry->mm, hmm_trace_kind_name(__entry->kind),
		      __entry->start, __entry->end,
		      (__entry->end - __entry->start) >> PAGE_SHIFT,
		      __entry->ret, __entry->retries, __entry->faults)
);

TRACE_EVENT(hmm_invalidate,
	    TP_PROTO(struct mm_struct *mm, const struct hmm_update *update,
		     unsigned int mirrors, u64 duration_ns, int ret),

	    TP_ARGS(mm, update, mirrors, duration_ns, ret),

	    TP_STRUCT__entry(__field(struct mm_struct *, mm)
			     __field(unsigned long, start)
			     __field(unsigned long, end)
			     __field(unsigned int, event)
			     __field(bool, blockable)
			     __field(unsigned int, mirrors)
			     __field(u64, duration_ns)
			     __field(int, ret)
	    ),

	    TP_fast_assign(__entry->mm = mm;
			   __entry->start = update->start;
			   __entry->end = update->end;
			   __entry->event = update->event;
			   __entry->blockable = update->blockable;
			   __entry->mirrors = mirrors;
			   __entry->duration_ns = duration_ns;
			   __entry->ret = ret;
	    ),

	    TP_printk("mm=%p %s start=0x%lx end=0x%lx blockable=%d mirrors=%u duration_ns=%llu ret=%d",
		      __entry->mm, hmm_trace_event_name(__entry->event),
		      __entry->start, __entry->end, __entry->blockable,
		      __entry->mirrors, __entry->duration_ns, __entry->ret)
);

#endif /* _TRACE_HMM_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
