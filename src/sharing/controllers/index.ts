import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';
import { PlaceholderController } from './placeholder.js';
import { SecretExportController } from './secret-export.js';
import { SecretImportController } from './secret-import.js';

/** SecretExport, SecretImport and placeholder controllers selected by --controllers. */
export function sharingControllers(ctx: OperatorContext, config: OperatorConfig): ControllerOperator[] {
  const wanted = new Set(config.controllers);
  const controllers: ControllerOperator[] = [];
  if (wanted.has('secretexport')) controllers.push(new SecretExportController(ctx));
  if (wanted.has('placeholder')) controllers.push(new PlaceholderController(ctx));
  if (wanted.has('secretimport')) controllers.push(new SecretImportController(ctx));
  return controllers;
}
