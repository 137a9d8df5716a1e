import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';

/** SecretExport, SecretImport and placeholder controllers selected by --controllers. */
export function sharingControllers(_ctx: OperatorContext, _config: OperatorConfig): ControllerOperator[] {
  return [];
}
