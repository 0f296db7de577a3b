/** Types of crds/generate.js (plain CommonJS so that it runs with no build step). */
export declare const OUTPUT: string;
export declare const RULE_NESTING: number;
export declare const MAX_CLAUSES: number;
export declare const MAX_FUNCTIONS: number;
export declare const NEAR_MISSES: readonly string[];
export declare const OPERAND_HELP: string;
/** The CRD object. */
export declare function crd(): Record<string, unknown>;
/** The CRD as YAML text, exactly as committed. */
export declare function render(): string;
/** The RE2 (and JavaScript) pattern of the string operands that are refused as mistyped variables. */
export declare function typoPattern(): string;
