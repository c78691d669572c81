/* banger — one-command development sandboxes on microVMs. */
#ifndef BANGER_H
#define BANGER_H
#include "banger/common.h"
#include "banger/ctx.h"
#include "banger/server.h"
#include "banger/version.h"
#include "banger/vm.h"
#include "banger/exec.h"
#include "banger/session.h"
#include "banger/workspace.h"
#include "banger/progress.h"
#include "banger/image.h"
#include "banger/kernel.h"
#include "banger/update.h"
#endif
