/* Progress events and cancellation for a running operation (op.h). */
#include "op.h"

#include <unistd.h>

void bng_op_event(bng_op *op, json_t *event)
{
	if (op && op->emit)
		op->emit(op, event);
	else
		json_decref(event);
}

int bng_op_sleep(bng_op *op, int ms)
{
	for (int left = ms; left > 0; left -= 20) {
		if (bng_op_cancelled(op))
			return bng_err(BANGER_ECANCELED, "cancelled");
		usleep((useconds_t)(left < 20 ? left : 20) * 1000);
	}
	return bng_op_cancelled(op) ? bng_err(BANGER_ECANCELED, "cancelled") : 0;
}
