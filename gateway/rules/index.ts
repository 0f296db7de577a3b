export {
  compileRule,
  DENY_ALL,
  parseIsoInstant,
  ruleNeedsAuth,
  type CompiledRule,
  type Decision,
  type FuncCaller,
  type FuncTarget,
  type RuleInput,
} from './compile';
export { parseOperand, type ParsedOperand } from './operands';
