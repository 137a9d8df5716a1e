import type { OperatorConfig } from './config.js';
import type { ControllerOperator, OperatorContext } from './runtime/operator.js';

/** The controllers selected by --controllers, constructed on the shared context. */
export function buildControllers(_ctx: OperatorContext, _config: OperatorConfig): ControllerOperator[] {
  return [];
}
